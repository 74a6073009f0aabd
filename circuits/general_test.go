package circuits

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// polyModel is a small general network, 784-6-relu2-5-relu2-10, with
// random weights, quantised on random images.
func polyModel(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	arch, err := model.ParseArchitecture("6,relu2,5,relu2,10")
	if err != nil {
		t.Fatal(err)
	}
	f, err := model.RandomFloat(rand.New(rand.NewPCG(seed, 5)), arch)
	if err != nil {
		t.Fatal(err)
	}
	cal := make([][]uint8, 0, 8)
	for _, img := range randomImages(seed+100, 8) {
		cal = append(cal, img[:])
	}
	m, err := model.Quantize(f, "poly-circuit", model.QuantizeOptions{WeightBits: 8, ActivationBits: 10, Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The spec of a general network carries its polynomials, round-trips
// canonically and refuses malformed poly lines.
func TestSpecOfGeneralNetwork(t *testing.T) {
	m := polyModel(t, 1)
	s, err := SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	if s.OutputFrac() != m.OutputFrac() || s.Architecture().String() != "784-6-relu2-5-relu2-10" {
		t.Fatalf("output frac %d vs %d, architecture %s", s.OutputFrac(), m.OutputFrac(), s.Architecture())
	}
	enc := s.Canonical()
	if !strings.Contains(string(enc), "poly in=6 out=6") || !strings.Contains(string(enc), " coeffs=") {
		t.Fatalf("spec:\n%s", enc)
	}
	back, err := ParseSpec(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID() != s.ID() {
		t.Fatal("round trip changed the spec")
	}
	// Another polynomial is another spec (and so another circuit).
	m2 := *m
	m2.Layers = append([]model.Layer(nil), m.Layers...)
	m2.Layers[1].Coeffs = append([]int64(nil), m.Layers[1].Coeffs...)
	m2.Layers[1].Coeffs[0]++
	s2, err := SpecOf(&m2)
	if err != nil {
		t.Fatal(err)
	}
	if s2.ID() == s.ID() {
		t.Fatal("a changed coefficient kept the spec ID")
	}
	text := string(enc)
	i := strings.Index(text, " coeffs=") + len(" coeffs=")
	bad := map[string]string{
		"no coefficients":   strings.Replace(text, text[i:strings.Index(text[i:], " ")+i], "", 1),
		"five coefficients": text[:i] + "1,2,3,4," + text[i:],
		"not a number":      text[:i] + "x" + text[i:],
		"huge coefficient":  text[:i] + "99999999999" + text[i:],
		"negative cfrac":    strings.Replace(text, "cfrac=", "cfrac=-", 1),
	}
	for name, b := range bad {
		if _, err := ParseSpec([]byte(b)); err == nil {
			t.Errorf("%s: accepted:\n%s", name, b)
		}
	}
	if _, err := ParseSpec(bytes.Replace(enc, []byte("poly in=6"), []byte("dense in=6"), 1)); err == nil {
		t.Error("a dense line with coefficients accepted")
	}
}

// The circuit of a general network accepts the honest witness (extreme
// images included: the bounds hold for any image) and refuses wrong
// outputs, outputs of another polynomial and a changed weight.
func TestCircuitGeneralNetwork(t *testing.T) {
	m := polyModel(t, 2)
	spec, err := SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	var salt fr.Element
	salt.SetUint64(99)
	imgs := randomImages(7, 1)
	var white pixels.Image
	for i := range white {
		white[i] = 255
	}
	imgs = append(imgs, white)
	a, outs, err := Assign(spec, m, salt, imgs)
	if err != nil {
		t.Fatal(err)
	}
	for k, img := range imgs {
		want, _ := m.Forward(img[:])
		for i := range want {
			if outs[k][i] != want[i] {
				t.Fatalf("Assign output %d/%d = %d, Forward gives %d", k, i, outs[k][i], want[i])
			}
		}
	}
	if err := solve(t, spec, a); err != nil {
		t.Fatalf("honest witness rejected: %v", err)
	}
	fresh := func() *Circuit {
		a, _, err := Assign(spec, m, salt, imgs)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	other := *m
	other.Layers = append([]model.Layer(nil), m.Layers...)
	other.Layers[3].Coeffs = append([]int64(nil), m.Layers[3].Coeffs...)
	other.Layers[3].Coeffs[1] += 1 << 10
	otherOut, _ := other.Forward(imgs[0][:])
	if slicesEqual(otherOut, outs[0]) {
		t.Fatal("the other polynomial gives the same scores")
	}
	cases := map[string]func(a *Circuit){
		"output off by one": func(a *Circuit) {
			a.Outputs[0][2] = new(big.Int).Add(a.Outputs[0][2].(*big.Int), big.NewInt(1))
		},
		"scores of another polynomial": func(a *Circuit) {
			for i, v := range otherOut {
				a.Outputs[0][i] = FieldOf(v)
			}
		},
		"changed weight": func(a *Circuit) {
			a.Weights[3] = new(big.Int).Xor(a.Weights[3].(*big.Int), big.NewInt(1))
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := fresh()
			mutate(a)
			if err := solve(t, spec, a); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
