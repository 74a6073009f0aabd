package model

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/veil-project/veil/pixels"
)

// randomPolyModel quantises a random 784-24-relu2-12-relu2-10 network
// calibrated on random sparse images. (The worst case of a cubic over all
// images, which Validate bounds, often leaves int64 at 14-bit
// activations; see TestCubicNeedsNarrowActivations.)
func randomPolyModel(t testing.TB, seed uint64) (*Model, [][]uint8) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	arch, err := ParseArchitecture("24,relu2,12,relu2,10")
	if err != nil {
		t.Fatal(err)
	}
	f, err := RandomFloat(rng, arch)
	if err != nil {
		t.Fatal(err)
	}
	imgs := make([][]uint8, 20)
	for i := range imgs {
		imgs[i] = make([]uint8, pixels.Count)
		for p := range imgs[i] {
			if rng.IntN(5) == 0 {
				imgs[i][p] = uint8(rng.IntN(256))
			}
		}
	}
	m, err := Quantize(f, "poly-test", QuantizeOptions{WeightBits: 8, ActivationBits: 14, Calibration: imgs})
	if err != nil {
		t.Fatal(err)
	}
	return m, imgs
}

func TestFitReLU(t *testing.T) {
	// On [-1, 1] the continuous least-squares quadratic is
	// 3/32 + x/2 + 15/32·x², whose largest error (at 0) is 3/32.
	c, e, err := FitReLU(2, -1, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{3.0 / 32, 0.5, 15.0 / 32}
	for k := range want {
		if math.Abs(c[k]-want[k]) > 2e-3 {
			t.Fatalf("coefficient %d = %.5f, want %.5f", k, c[k], want[k])
		}
	}
	if math.Abs(e-3.0/32) > 2e-3 {
		t.Fatalf("max error %.5f, want %.5f", e, 3.0/32)
	}
	// An asymmetric range, degree 3: a better fit than degree 2.
	_, e2, _ := FitReLU(2, -3, 5)
	_, e3, err := FitReLU(3, -3, 5)
	if err != nil || !(e3 < e2) || e2 > 0.1*8 {
		t.Fatalf("degree 3 error %.4f, degree 2 %.4f (%v)", e3, e2, err)
	}
	for _, bad := range [][3]float64{{0, -1, 1}, {4, -1, 1}, {2, 1, 1}, {2, math.NaN(), 1}, {2, 0, math.Inf(1)}} {
		if _, _, err := FitReLU(int(bad[0]), bad[1], bad[2]); err == nil {
			t.Errorf("FitReLU%v accepted", bad)
		}
	}
}

// The fixed-point poly layer computes the dequantised polynomial up to
// the intermediate roundings, and the bounds contain every trace.
func TestPolyModelForward(t *testing.T) {
	m, imgs := randomPolyModel(t, 3)
	if a := ArchitectureOf(m).String(); a != "784-24-relu2-12-relu2-10" {
		t.Fatalf("architecture %s", a)
	}
	deq := m.Dequantize()
	b := m.Bounds()
	for _, img := range imgs {
		y, err := m.Forward(img)
		if err != nil {
			t.Fatal(err)
		}
		z := deq.Forward(PixelsToInput(img))
		var span float64
		for _, v := range z {
			span = math.Max(span, math.Abs(v))
		}
		for i := range y {
			if d := math.Abs(float64(y[i])*m.Scale() - z[i]); d > 0.02*span+1e-6 {
				t.Fatalf("score %d: fixed %.5f vs float %.5f (span %.3f)", i, float64(y[i])*m.Scale(), z[i], span)
			}
		}
		tr, _ := m.Trace(img)
		for li := range tr {
			for i, v := range tr[li] {
				if iv := b[li].Out[i]; v < iv.Lo || v > iv.Hi {
					t.Fatalf("layer %d output %d = %d outside [%d, %d]", li, i, v, iv.Lo, iv.Hi)
				}
			}
		}
	}
	// One poly unit by hand: p(x) = C0 + C1·x + C2·x² at the input's
	// fraction bits f, acc at CoefFrac + 2f.
	l := Layer{Kind: KindPoly, In: 1, Out: 1, Coeffs: []int64{3, -5, 7}, CoefFrac: 4}
	f := 2
	x := int64(9) // 9/4
	want := int64(3<<4 - 5*9<<2 + 7*81)
	if got := l.forward([]int64{x}, f)[0]; got != want {
		t.Fatalf("poly acc %d, want %d", got, want)
	}
	// Degree 3, negative input, with a shift: acc at CoefFrac + 3f.
	l = Layer{Kind: KindPoly, In: 1, Out: 1, Coeffs: []int64{1, 2, -3, 4}, CoefFrac: 3, Shift: 5}
	x = -7
	acc := int64(1<<6 + 2*x<<4 - 3*x*x<<2 + 4*x*x*x)
	if got := l.forward([]int64{x}, f)[0]; got != (acc+16)>>5 {
		t.Fatalf("cubic %d, want %d", got, (acc+16)>>5)
	}
}

// Quantize refuses activations too wide for a cubic to stay in int64, and
// quantises narrower ones.
func TestCubicNeedsNarrowActivations(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	arch, _ := ParseArchitecture("16,relu3,10")
	f, err := RandomFloat(rng, arch)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]uint8, pixels.Count)
	for p := range img {
		img[p] = uint8(p * 7)
	}
	cal := [][]uint8{img}
	if _, err := Quantize(f, "c", QuantizeOptions{WeightBits: 8, ActivationBits: 30, Calibration: cal}); err == nil || !strings.Contains(err.Error(), "too wide") {
		t.Fatalf("30-bit activations into a cubic: %v", err)
	}
	m, err := Quantize(f, "c", QuantizeOptions{WeightBits: 8, ActivationBits: 8, Calibration: cal})
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[1].Degree() != 3 || m.Layers[1].Coeffs[3] == 0 {
		t.Fatalf("cubic layer %+v", m.Layers[1])
	}
}

func TestPolyModelFileRoundTrip(t *testing.T) {
	m, imgs := randomPolyModel(t, 4)
	var buf bytes.Buffer
	if err := (&File{Model: m}).Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"approx"`) || !strings.Contains(buf.String(), `"max_error"`) {
		t.Fatal("the fit range and error are not in the file")
	}
	g, err := Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs[:3] {
		a, _ := m.Forward(img)
		b, _ := g.Model.Forward(img)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("score %d changed after a round trip: %d vs %d", i, a[i], b[i])
			}
		}
	}
	if g.Model.Layers[1].Approx == nil || g.Model.Layers[1].Approx.Lo != -2 {
		t.Fatalf("approximation lost: %+v", g.Model.Layers[1].Approx)
	}
}

// A model file with a bad layer description is refused with an error
// naming the problem (the checksum is recomputed so that only the layer
// is wrong).
func TestDecodeRejectsBadPolyLayers(t *testing.T) {
	m, _ := randomPolyModel(t, 5)
	cases := map[string]struct {
		edit func(l *Layer)
		want string
	}{
		"no coefficients":       {func(l *Layer) { l.Coeffs = nil }, "coefficients"},
		"degree 4":              {func(l *Layer) { l.Coeffs = []int64{1, 2, 3, 4, 5} }, "coefficients"},
		"huge coefficient":      {func(l *Layer) { l.Coeffs[0] = 1 << 40 }, "does not fit"},
		"width change":          {func(l *Layer) { l.Out = l.In + 1 }, "maps"},
		"weights":               {func(l *Layer) { l.WeightBits = 8 }, "has weights"},
		"negative coef frac":    {func(l *Layer) { l.CoefFrac = -1 }, "coef_frac"},
		"unknown function":      {func(l *Layer) { l.Approx.Function = "tanh" }, "only \"relu\""},
		"empty range":           {func(l *Layer) { l.Approx.Lo, l.Approx.Hi = 1, 1 }, "not an interval"},
		"negative error":        {func(l *Layer) { l.Approx.MaxError = -1 }, "max error"},
		"unknown kind":          {func(l *Layer) { l.Kind = "relu" }, "unknown kind"},
		"coefficients on dense": {func(l *Layer) {}, "dense layer has polynomial"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			bad := *m
			bad.Layers = append([]Layer(nil), m.Layers...)
			idx := 1
			if name == "coefficients on dense" {
				idx = 0
				bad.Layers[0].Coeffs = []int64{1, 2}
			}
			l := bad.Layers[idx]
			l.Coeffs = append([]int64(nil), l.Coeffs...)
			if l.Approx != nil {
				a := *l.Approx
				l.Approx = &a
			}
			c.edit(&l)
			bad.Layers[idx] = l
			fm, err := (&File{Model: &bad}).toFile()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := jsonEncode(&buf, fm); err != nil {
				t.Fatal(err)
			}
			_, err = Decode(&buf)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestParseArchitecturePoly(t *testing.T) {
	a, err := ParseArchitecture("128,relu2,64,relu3,10")
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != "784-128-relu2-64-relu3-10" || a[1] != (LayerSpec{Kind: KindPoly, Degree: 2}) || a[3].Degree != 3 {
		t.Fatalf("parsed %s %+v", a, a)
	}
	for _, bad := range []string{"relu2,10", "128,relu0,10", "128,relu4,10", "128,relu,10", "128,reluX,10",
		"128,relu02,10", "128,relu2,sq,10", "128,relu2", "+5,10", "05,10", strings.Repeat("10,", 40) + "10"} {
		if _, err := ParseArchitecture(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The parser never panics, and what it accepts prints back to an
// architecture it parses to the same layers.
func FuzzParseArchitecture(f *testing.F) {
	for _, s := range []string{"32,128,sq,10", "128,relu2,64,relu2,10", "10", "relu3,10", "1,relu1,10", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseArchitecture(s)
		if err != nil {
			return
		}
		parts := strings.Split(a.String(), "-")[1:]
		b, err := ParseArchitecture(strings.ReplaceAll(strings.Join(parts, ","), "sq", "sq"))
		if err != nil {
			t.Fatalf("%q parsed to %s, which does not parse: %v", s, a, err)
		}
		if a.String() != b.String() || len(a) != len(b) {
			t.Fatalf("%q: %s then %s", s, a, b)
		}
	})
}
