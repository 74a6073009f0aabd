package training

import (
	"context"
	"math"
	"testing"

	"github.com/veil-project/veil/model"
)

// A network with ReLU approximations trains, and each polynomial is the
// least-squares fit on a range that holds nearly all pre-activations: the
// stated error is the fit's on that range, and the observed range is
// recorded beside it.
func TestTrainPolyActivations(t *testing.T) {
	set := smallTrainSet(t, 2000)
	arch, err := model.ParseArchitecture("24,relu2,16,relu2,10")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Arch: arch, Epochs: 3, BatchSize: 50, LearningRate: 3e-3, Seed: 7}
	f, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if acc := FloatAccuracy(f, set); acc < 0.8 {
		t.Fatalf("training accuracy %.3f < 0.8", acc)
	}
	for _, i := range []int{1, 3} {
		l := f.Layers[i]
		a := l.Approx
		if l.Kind != model.KindPoly || len(l.Coeffs) != 3 || a == nil {
			t.Fatalf("layer %d: %+v", i, l)
		}
		c, e, err := model.FitReLU(2, a.Lo, a.Hi)
		if err != nil {
			t.Fatal(err)
		}
		for k := range c {
			if c[k] != l.Coeffs[k] {
				t.Fatalf("layer %d coefficient %d = %g, the fit on [%g, %g] gives %g", i, k, l.Coeffs[k], a.Lo, a.Hi, c[k])
			}
		}
		if e != a.MaxError || !(a.Lo < 0 && a.Hi > 0) {
			t.Fatalf("layer %d: stated %+v, fit error %g", i, a, e)
		}
		// The range penalty keeps pre-activations near the fitted range.
		if a.ObservedLo < a.Lo-0.5*(a.Hi-a.Lo) || a.ObservedHi > a.Hi+0.5*(a.Hi-a.Lo) {
			t.Fatalf("layer %d: observed [%g, %g] far outside the fitted [%g, %g]", i, a.ObservedLo, a.ObservedHi, a.Lo, a.Hi)
		}
	}
	m, err := model.Quantize(f, "tiny-poly", model.QuantizeOptions{WeightBits: 8, ActivationBits: 14, Calibration: [][]uint8{set.Images[0][:], set.Images[1][:]}})
	if err != nil {
		t.Fatal(err)
	}
	if fa, qa := FloatAccuracy(f, set), FixedAccuracy(m, set); qa < fa-0.02 {
		t.Fatalf("quantisation lost too much: float %.3f, fixed %.3f", fa, qa)
	}
	// Training again from the result keeps its polynomials (no warm-up).
	cfg.Init, cfg.Epochs = f, 1
	g, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range g.Layers[1].Coeffs {
		if c != f.Layers[1].Coeffs[k] || math.IsNaN(c) {
			t.Fatalf("coefficient %d changed from %g to %g", k, f.Layers[1].Coeffs[k], c)
		}
	}
}
