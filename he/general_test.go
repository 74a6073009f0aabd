package he

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// randomGeneral quantises a random network of the given architecture,
// calibrated on the probe images.
func randomGeneral(t testing.TB, arch string, seed uint64, probe [][]uint8) *model.Model {
	return randomGeneralBits(t, arch, seed, probe, 10)
}

// randomGeneralBits is randomGeneral with the given activation width: a
// deep network's worst case (which Validate bounds) needs narrow ones.
func randomGeneralBits(t testing.TB, arch string, seed uint64, probe [][]uint8, bits int) *model.Model {
	t.Helper()
	a, err := model.ParseArchitecture(arch)
	if err != nil {
		t.Fatal(err)
	}
	f, err := model.RandomFloat(rand.New(rand.NewPCG(seed, 3)), a)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Quantize(f, "random-"+arch, model.QuantizeOptions{WeightBits: 8, ActivationBits: bits, Calibration: probe})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runGeneral compiles, encrypts a full ciphertext of images, evaluates
// (keys and ciphertexts through their wire forms) and decrypts.
func runGeneral(t testing.TB, m *model.Model, o GeneralOptions, imgs [][]uint8) (*GeneralNetwork, [][]float64) {
	t.Helper()
	net, err := CompileGeneral(m, o)
	if err != nil {
		t.Fatal(err)
	}
	c := net.Parameters()
	sk := c.GenSecretKey()
	k, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	w, _ := k.MarshalBinary()
	keys, err := c.UnmarshalEvaluationKeys(w, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	imgs = imgs[:min(len(imgs), net.Layout().Blocks)]
	ct, err := sk.Encrypt(net.Layout(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	cw, _ := ct.MarshalBinary()
	in, err := c.UnmarshalCiphertext(cw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Evaluate(context.Background(), in, keys)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := sk.Decrypt(net.Layout(), out)
	if err != nil {
		t.Fatal(err)
	}
	return net, scores[:len(imgs)]
}

// Decrypted scores equal the float network's (the dequantised model)
// within the plan's stated bound, and the fixed-point scores within the
// bound plus the fixed point's own rounding, for random networks of one,
// two and three activations (dense layers folded, ReLU approximations and
// squares mixed).
func TestGeneralNetworksMatchPlaintext(t *testing.T) {
	_, imgs := testImages(t, 16)
	cases := []struct {
		arch    string
		maxLogN int
		acts    int
	}{
		{"16,relu2,10", 13, 1},
		{"24,relu2,16,relu2,10", 13, 2},
		{"32,20,sq,12,relu2,10", 13, 2},
		{"12,relu1,16,relu2,10", 13, 1}, // a degree-1 "activation" is affine and folds
	}
	if !testing.Short() {
		cases = append(cases, struct {
			arch    string
			maxLogN int
			acts    int
		}{"20,relu2,16,relu2,12,relu2,10", 14, 3})
	}
	for i, tc := range cases {
		t.Run(tc.arch, func(t *testing.T) {
			m := randomGeneralBits(t, tc.arch, uint64(10+i), imgs, 10-4*max(0, tc.acts-2))
			net, scores := runGeneral(t, m, GeneralOptions{Probe: imgs, MaxLogN: tc.maxLogN}, imgs)
			p := net.Plan()
			if p.Activations != tc.acts || len(net.Parameters().Literal().LogQ) != tc.acts+1 {
				t.Fatalf("plan %+v, literal %v", p, net.Parameters().Literal())
			}
			// A client derives the same layout from the architecture.
			if lay, err := net.Parameters().LayoutFor(model.ArchitectureOf(m)); err != nil || lay != net.Layout() {
				t.Fatalf("LayoutFor gives %+v (%v), the network has %+v", lay, err, net.Layout())
			}
			if sec, err := net.Parameters().Literal().SecurityBits(); err != nil || sec != 128 {
				t.Fatalf("security %d: %v", sec, err)
			}
			deq := m.Dequantize()
			var worst, worstFixed float64
			for b, img := range imgs[:len(scores)] {
				want := deq.Forward(model.PixelsToInput(img))
				fixed, _ := m.Forward(img)
				for r := range want {
					worst = math.Max(worst, math.Abs(scores[b][r]-want[r]))
					fx := float64(fixed[r]) * m.Scale()
					worstFixed = math.Max(worstFixed, math.Abs(scores[b][r]-fx))
					// Against the fixed-point score: the stated bound plus
					// the fixed point's own rounding (its distance to the
					// float network).
					if d := math.Abs(scores[b][r] - fx); d > p.ErrorBound+math.Abs(fx-want[r]) {
						t.Fatalf("image %d score %d: decrypted %.5f, fixed point %.5f, float %.5f: beyond the bound %.3g plus the rounding", b, r, scores[b][r], fx, want[r], p.ErrorBound)
					}
				}
			}
			t.Logf("%s: %v, S=2^%d w=2^%d, precision %d bits, magnitudes %.1f, %d keys, diagonals %v: max error %.2e (bound %.2e), vs fixed point %.2e",
				tc.arch, net.Parameters().Literal(), p.LogScale, p.LogWeight, p.PrecisionBits, p.LogMagnitudes, len(net.GaloisElements()), p.Diagonals, worst, p.ErrorBound, worstFixed)
			if worst > p.ErrorBound {
				t.Fatalf("max error %.3g above the stated bound %.3g", worst, p.ErrorBound)
			}
			if worst == 0 {
				t.Fatal("no error at all: the scores were not computed under encryption")
			}
		})
	}
}

// Parameter selection refuses a network it cannot hold at 128 bits, and
// degree-3 activations, with errors that say why.
func TestCompileGeneralRefuses(t *testing.T) {
	_, imgs := testImages(t, 4)
	deep := randomGeneralBits(t, "20,relu2,16,relu2,12,relu2,10", 1, imgs, 6)
	if _, err := CompileGeneral(deep, GeneralOptions{Probe: imgs, MaxLogN: 13}); err == nil ||
		!strings.Contains(err.Error(), "128-bit security up to N = 2^13") || !strings.Contains(err.Error(), "the bound is 218") {
		t.Fatalf("3 activations at N = 2^13: %v", err)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	a, _ := model.ParseArchitecture("16,relu3,10")
	f, _ := model.RandomFloat(rng, a)
	cubic, err := model.Quantize(f, "cubic", model.QuantizeOptions{WeightBits: 8, ActivationBits: 8, Calibration: imgs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CompileGeneral(cubic, GeneralOptions{Probe: imgs}); err == nil || !strings.Contains(err.Error(), "degree 2 at most") {
		t.Fatalf("cubic: %v", err)
	}
	small := randomGeneral(t, "16,relu2,10", 1, imgs)
	if _, err := CompileGeneral(small, GeneralOptions{}); err == nil || !strings.Contains(err.Error(), "no probe") {
		t.Fatalf("no probe: %v", err)
	}
	if _, err := CompileGeneral(small, GeneralOptions{Probe: [][]uint8{make([]uint8, 5)}}); err == nil || !strings.Contains(err.Error(), "5 pixels") {
		t.Fatalf("short probe: %v", err)
	}
	wide := randomGeneral(t, "3000,relu2,10", 1, imgs)
	if _, err := CompileGeneral(wide, GeneralOptions{Probe: imgs, MaxLogN: 12}); err == nil || !strings.Contains(err.Error(), "blocks of") {
		t.Fatalf("wide layer: %v", err)
	}
	_ = pixels.Count
}

// The folding of a degree-2 polynomial into the maps around a square is
// exact: the folded maps compute the float network.
func TestFoldGeneralIsExact(t *testing.T) {
	_, imgs := testImages(t, 3)
	m := randomGeneral(t, "24,relu2,16,sq,12,relu1,10", 5, imgs)
	maps, err := FoldGeneral(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 3 {
		t.Fatalf("%d maps, want 3", len(maps))
	}
	deq := m.Dequantize()
	for _, img := range imgs {
		x := model.PixelsToInput(img)
		want := deq.Forward(x)
		for k, a := range maps {
			y := make([]float64, a.Rows)
			for r := range y {
				y[r] = a.B[r]
				for c := 0; c < a.Cols; c++ {
					y[r] += a.W[r*a.Cols+c] * x[c]
				}
				if k < len(maps)-1 {
					y[r] *= y[r]
				}
			}
			x = y
		}
		for r := range want {
			if math.Abs(x[r]-want[r]) > 1e-9*(1+math.Abs(want[r])) {
				t.Fatalf("score %d: folded %.12g, network %.12g", r, x[r], want[r])
			}
		}
	}
}

// The default network's compiler refuses a polynomial activation instead
// of skipping it.
func TestCompileRefusesPolyLayers(t *testing.T) {
	_, imgs := testImages(t, 2)
	m := randomGeneral(t, "16,relu2,10", 1, imgs)
	c, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(m, DefaultEvaluationSettings); err == nil || !strings.Contains(err.Error(), "CompileGeneral") {
		t.Fatalf("Compile of a poly model: %v", err)
	}
}

// The general path's noise, measured as for the default network: two
// encryptions of the same images evaluated without re-randomisation. The
// test states the fact docs/networks.md reports: the flooding σ chosen
// for precision is below the evaluation noise (no circuit-privacy claim).
func TestGeneralNetworkNoise(t *testing.T) {
	_, imgs := testImages(t, 8)
	m := randomGeneral(t, "24,relu2,16,relu2,10", 3, imgs)
	net, err := CompileGeneral(m, GeneralOptions{Probe: imgs})
	if err != nil {
		t.Fatal(err)
	}
	c := net.Parameters()
	sk := c.GenSecretKey()
	k, _ := sk.GenEvaluationKeys(net.GaloisElements())
	w, _ := k.MarshalBinary()
	keys, err := c.UnmarshalEvaluationKeys(w, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sk.Encrypt(net.Layout(), imgs)
	b, _ := sk.Encrypt(net.Layout(), imgs)
	r, err := net.MeasureNoise(sk, a, b, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("noise RMS 2^%.1f, max 2^%.1f per coefficient; flooding σ 2^%.1f; result scale 2^%.1f; KL %.3g nats",
		math.Log2(r.RMSCoeff), math.Log2(r.MaxCoeff), math.Log2(r.FloodSigma), net.resultLogScale(), r.KL)
	if r.RMSCoeff <= 1 || math.Abs(math.Log2(r.FloodSigma)-(net.resultLogScale()-20)) > 1e-9 {
		t.Fatalf("report %+v", r)
	}
	// Pinsker's bound is vacuous: the flooded result does not hide the
	// weight-dependent noise.
	if r.KL < 1 {
		t.Fatalf("KL %.3g: the flooding now drowns the noise; update docs/networks.md", r.KL)
	}
}

// Given parameters are used when the network fits them, and refused with a
// reason otherwise.
func TestCompileGeneralWithGivenParameters(t *testing.T) {
	_, imgs := testImages(t, 8)
	a := randomGeneral(t, "24,relu2,16,relu2,10", 1, imgs)
	b := randomGeneral(t, "24,relu2,16,relu2,10", 2, imgs)
	na, err := CompileGeneral(a, GeneralOptions{Probe: imgs})
	if err != nil {
		t.Fatal(err)
	}
	lit := na.Parameters().Literal()
	nb, err := CompileGeneral(b, GeneralOptions{Probe: imgs, Literal: &lit})
	if err != nil {
		t.Fatal(err)
	}
	if nb.Parameters().Fingerprint() != na.Parameters().Fingerprint() {
		t.Fatal("the given parameters were not used")
	}
	one := randomGeneral(t, "16,relu2,10", 1, imgs)
	if _, err := CompileGeneral(one, GeneralOptions{Probe: imgs, Literal: &lit}); err == nil || !strings.Contains(err.Error(), "needs 2 and 1024") {
		t.Fatalf("one activation under two-activation parameters: %v", err)
	}
	tight := lit
	tight.LogQ = append([]int(nil), lit.LogQ...)
	tight.LogQ[0] = 30
	if _, err := CompileGeneral(a, GeneralOptions{Probe: imgs, Literal: &tight}); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("a q0 too small for the scores: %v", err)
	}
}
