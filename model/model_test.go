package model

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/veil-project/veil/pixels"
)

func TestDefaultModelLoads(t *testing.T) {
	f, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if f.Model.Name != DefaultName {
		t.Fatalf("name %q, want %q", f.Model.Name, DefaultName)
	}
	if a := ArchitectureOf(f.Model).String(); a != "784-32-128-sq-10" {
		t.Fatalf("architecture %q", a)
	}
	if f.Training == nil || f.Training.FixedAccuracy < 0.98 {
		t.Fatalf("default model's recorded accuracy is below 98%%: %+v", f.Training)
	}
}

func TestFileRoundTrip(t *testing.T) {
	f, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if g.SHA256 != f.SHA256 {
		t.Fatalf("checksum changed: %s vs %s", g.SHA256, f.SHA256)
	}
	for i := range f.Model.Layers {
		a, b := f.Model.Layers[i], g.Model.Layers[i]
		if a.Shift != b.Shift || len(a.W) != len(b.W) {
			t.Fatalf("layer %d differs", i)
		}
		for k := range a.W {
			if a.W[k] != b.W[k] {
				t.Fatalf("layer %d weight %d: %d vs %d", i, k, a.W[k], b.W[k])
			}
		}
	}
}

func TestDecodeRejectsBadFiles(t *testing.T) {
	var buf bytes.Buffer
	f, _ := Default()
	if err := f.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	cases := []struct {
		name, data, want string
		is               error
	}{
		{"not json", "hello", "not a model file", nil},
		{"empty", "", "not a model file", nil},
		{"bad checksum", strings.Replace(good, `"shift": 7`, `"shift": 6`, 1), "checksum mismatch", ErrChecksum},
		{"wrong format", strings.Replace(good, FormatVersion, "veil-model/9", 1), "format", nil},
		{"truncated", good[:len(good)/2], "not a model file", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(c.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
		})
	}
}

// The dequantized float network (what CKKS evaluates) and the exact
// fixed-point network must agree up to the intermediate roundings.
func TestDequantizeMatchesFixed(t *testing.T) {
	f, _ := Default()
	m := f.Model
	deq := m.Dequantize()
	scale := m.Scale()
	var img [pixels.Count]uint8
	for i := range img {
		img[i] = uint8((i * 37) % 256)
		if i%5 != 0 {
			img[i] = 0
		}
	}
	y, err := m.Forward(img[:])
	if err != nil {
		t.Fatal(err)
	}
	z := deq.Forward(PixelsToInput(img[:]))
	var span float64
	for _, v := range z {
		span = math.Max(span, math.Abs(v))
	}
	for i := range y {
		if d := math.Abs(float64(y[i])*scale - z[i]); d > 0.02*span+1e-9 {
			t.Fatalf("score %d: fixed %.5f vs float %.5f (span %.3f)", i, float64(y[i])*scale, z[i], span)
		}
	}
}

func TestBoundsContainTrace(t *testing.T) {
	f, _ := Default()
	m := f.Model
	b := m.Bounds()
	for _, fill := range []uint8{0, 128, 255} {
		var img [pixels.Count]uint8
		for i := range img {
			img[i] = fill
		}
		tr, err := m.Trace(img[:])
		if err != nil {
			t.Fatal(err)
		}
		for li := range tr {
			for i, v := range tr[li] {
				if iv := b[li].Out[i]; v < iv.Lo || v > iv.Hi {
					t.Fatalf("layer %d output %d = %d outside [%d, %d]", li, i, v, iv.Lo, iv.Hi)
				}
			}
		}
	}
}

func TestValidateRejects(t *testing.T) {
	f, _ := Default()
	m := f.Model
	m.Layers[0].W[3] = 1000 // does not fit in 8 bits
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("want a weight-range error, got %v", err)
	}
	f, _ = Default()
	f.Model.Layers[1].In = 31
	if err := f.Model.Validate(); err == nil || !strings.Contains(err.Error(), "input size") {
		t.Fatalf("want an input-size error, got %v", err)
	}
	if _, err := f.Model.Forward(make([]uint8, 10)); err == nil {
		t.Fatal("Forward accepted 10 pixels")
	}
}

func TestParseArchitecture(t *testing.T) {
	a, err := ParseArchitecture("32, 128,sq,10")
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != "784-32-128-sq-10" {
		t.Fatalf("parsed %s", a)
	}
	for _, bad := range []string{"", "32,sq", "10,sq,5", "0,10", "x,10", "5000,10"} {
		if _, err := ParseArchitecture(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRandomWeights(t *testing.T) {
	l := RandomWeights(rand.New(rand.NewPCG(1, 2)), Layer{In: 30, Out: 5, WeightFrac: 7, BiasBits: 12, Shift: 3})
	again := RandomWeights(rand.New(rand.NewPCG(1, 2)), Layer{In: 30, Out: 5, WeightFrac: 7, BiasBits: 12, Shift: 3})
	if l.Kind != KindDense || l.WeightBits != 8 || len(l.W) != 150 || len(l.B) != 5 || !slices.Equal(l.W, again.W) || !slices.Equal(l.B, again.B) {
		t.Fatalf("layer %+v", l)
	}
	for _, w := range l.W {
		if w < -128 || w > 127 {
			t.Fatalf("weight %d outside 8 bits", w)
		}
	}
	for _, b := range l.B {
		if b < -1<<10 || b >= 1<<10 {
			t.Fatalf("bias %d outside 12 bits", b)
		}
	}
}

func TestCompactModelLoads(t *testing.T) {
	f, err := Compact()
	if err != nil {
		t.Fatal(err)
	}
	if f.Model.Name != CompactName {
		t.Fatalf("name %q, want %q", f.Model.Name, CompactName)
	}
	if a, want := ArchitectureOf(f.Model).String(), CompactArchitecture.String(); a != want || a != "784-20-80-sq-10" {
		t.Fatalf("architecture %q, want %q", a, want)
	}
	if f.Training == nil || f.Training.FixedAccuracy < 0.97 {
		t.Fatalf("compact model's recorded accuracy is below 97%%: %+v", f.Training)
	}
}

func TestCommittedModelNames(t *testing.T) {
	for name, want := range map[string]string{"default": DefaultName, DefaultName: DefaultName, "compact": CompactName, CompactName: CompactName} {
		f, err := Committed(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Model.Name != want {
			t.Fatalf("%s: got model %q, want %q", name, f.Model.Name, want)
		}
	}
	if _, err := Committed("mnist-64"); err == nil || !strings.Contains(err.Error(), `no committed model "mnist-64"`) {
		t.Fatalf("unknown name: %v", err)
	}
}
