package federated

import (
	"testing"

	"github.com/veil-project/veil/model"
)

// ParseModel never panics and accepts only networks of the architecture
// that encode back to the same bytes.
func FuzzParseModel(f *testing.F) {
	init, err := InitialModel(1)
	if err != nil {
		f.Fatal(err)
	}
	good := ModelBytes(init)
	f.Add(good)
	f.Add(good[:100])
	f.Add([]byte{0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModel(b, model.DefaultArchitecture)
		if err != nil {
			return
		}
		if string(ModelBytes(m)) != string(b) {
			t.Fatal("accepted bytes that do not re-encode to themselves")
		}
	})
}

// Bad model bytes get an error naming the problem.
func TestParseModelRejects(t *testing.T) {
	init, _ := InitialModel(1)
	good := ModelBytes(init)
	if _, err := ParseModel(good, model.DefaultArchitecture); err != nil {
		t.Fatal(err)
	}
	other := model.Architecture{{Kind: model.KindDense, Out: 16}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}}
	nan := append([]byte(nil), good...)
	copy(nan[len(nan)-8:], []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 1})
	for name, c := range map[string]struct {
		b    []byte
		arch model.Architecture
	}{
		"truncated":          {good[:len(good)-1], model.DefaultArchitecture},
		"trailing":           {append(append([]byte(nil), good...), 0), model.DefaultArchitecture},
		"other architecture": {good, other},
		"NaN parameter":      {nan, model.DefaultArchitecture},
		"empty":              {nil, model.DefaultArchitecture},
	} {
		if _, err := ParseModel(c.b, c.arch); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
