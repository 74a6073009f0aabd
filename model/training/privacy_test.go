package training

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/veil-project/veil/model"
)

// Without subsampling the Gaussian mechanism's RDP is exactly α/(2σ²).
func TestDPEpsilonWithoutSampling(t *testing.T) {
	const sigma, steps, delta = 2.0, 10, 1e-5
	eps, order, err := DPEpsilon(1, sigma, steps, delta)
	if err != nil {
		t.Fatal(err)
	}
	want := math.Inf(1)
	for a := 2; a <= 256; a++ {
		want = math.Min(want, steps*float64(a)/(2*sigma*sigma)+math.Log(1/delta)/float64(a-1))
	}
	if math.Abs(eps-want) > 1e-9 || order < 2 {
		t.Fatalf("epsilon %g at order %d, want %g", eps, order, want)
	}
}

// The classic DP-SGD MNIST setting (Abadi et al.; TensorFlow Privacy's
// tutorial): 60,000 examples, batch 256, noise 1.1, 60 epochs, δ = 1e-5,
// for which TensorFlow Privacy's RDP accountant reports ε ≈ 3.0.
func TestDPEpsilonMatchesPublishedAccountant(t *testing.T) {
	q := 256.0 / 60000
	steps := int(60 * 60000 / 256)
	eps, order, err := DPEpsilon(q, 1.1, steps, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("epsilon %.3f at order %d", eps, order)
	if eps < 2.7 || eps > 3.3 {
		t.Fatalf("epsilon %.3f, TensorFlow Privacy reports about 3.0", eps)
	}
	// More noise, fewer steps or a smaller sampling rate give less.
	e2, _, _ := DPEpsilon(q, 2.2, steps, 1e-5)
	e3, _, _ := DPEpsilon(q/2, 1.1, steps, 1e-5)
	if !(e2 < eps && e3 < eps) {
		t.Fatalf("epsilon not monotone: %g, %g vs %g", e2, e3, eps)
	}
	if _, _, err := DPEpsilon(0, 1, 1, 1e-5); err == nil {
		t.Fatal("q = 0 accepted")
	}
}

// The per-example clipping trick (norms from row norms, clipped sum as one
// product) gives exactly the brute-force clipped sum of per-example
// gradients.
func TestDPClippingMatchesPerExampleGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	arch := model.Architecture{{Kind: model.KindDense, Out: 6}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}}
	mk := func() []*trainLayer {
		var ls []*trainLayer
		in := 12
		for _, s := range arch {
			out := s.Out
			if s.Kind == model.KindSquare {
				out = in
			}
			l := &trainLayer{spec: s, in: in, out: out}
			if s.Kind == model.KindDense {
				l.W, l.B = newParam(out, in), newParam(1, out)
				l.gW, l.gB = mat.NewDense(out, in, nil), mat.NewDense(1, out, nil)
				for k := range l.W.w.RawMatrix().Data {
					l.W.w.RawMatrix().Data[k] = rng.NormFloat64()
				}
			}
			ls = append(ls, l)
			in = out
		}
		return ls
	}
	layers := mk()
	const rows, batch, clip = 5, 4.0, 0.7
	x := mat.NewDense(rows, 12, nil)
	for k := range x.RawMatrix().Data {
		x.RawMatrix().Data[k] = rng.NormFloat64()
	}
	forward := func(ls []*trainLayer, x *mat.Dense) {
		for _, l := range ls {
			l.x = x
			z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
			if l.spec.Kind == model.KindDense {
				z.Mul(x, l.W.w.T())
			} else {
				z.MulElem(x, x)
			}
			x = z
		}
	}
	grad := mat.NewDense(rows, 10, nil)
	for k := range grad.RawMatrix().Data {
		grad.RawMatrix().Data[k] = rng.NormFloat64() * 3 / batch
	}
	forward(layers, x)
	dp := &DPSGD{Clip: clip, NoiseMultiplier: 1e-300, Seed: [32]byte{1}}
	dpBackward(layers, grad, dp, false, batch, rand.New(rand.NewChaCha8(dp.Seed)))

	// Brute force: each example alone, unclipped gradient, clip, sum.
	want := map[int][2][]float64{}
	for r := range rows {
		one := mk()
		for i := range one {
			if one[i].spec.Kind == model.KindDense {
				one[i].W.w.Copy(layers[i].W.w)
			}
		}
		xr := mat.NewDense(1, 12, append([]float64(nil), x.RawRowView(r)...))
		forward(one, xr)
		g := mat.NewDense(1, 10, append([]float64(nil), grad.RawRowView(r)...))
		g.Scale(batch, g)
		var parts [][2][]float64
		var norm2 float64
		for i := len(one) - 1; i >= 0; i-- {
			l := one[i]
			if l.spec.Kind == model.KindDense {
				gw := mat.NewDense(l.out, l.in, nil)
				gw.Mul(g.T(), l.x)
				gb := append([]float64(nil), g.RawRowView(0)...)
				for _, v := range gw.RawMatrix().Data {
					norm2 += v * v
				}
				for _, v := range gb {
					norm2 += v * v
				}
				parts = append(parts, [2][]float64{gw.RawMatrix().Data, gb})
				next := mat.NewDense(1, l.in, nil)
				next.Mul(g, l.W.w)
				g = next
			} else {
				next := mat.NewDense(1, l.in, nil)
				next.MulElem(g, l.x)
				next.Scale(2, next)
				g = next
			}
		}
		c := math.Min(1, clip/math.Sqrt(norm2))
		for j, p := range parts {
			acc := want[j]
			if acc[0] == nil {
				acc = [2][]float64{make([]float64, len(p[0])), make([]float64, len(p[1]))}
			}
			for k, v := range p[0] {
				acc[0][k] += c * v / batch
			}
			for k, v := range p[1] {
				acc[1][k] += c * v / batch
			}
			want[j] = acc
		}
	}
	j := 0
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if l.spec.Kind != model.KindDense {
			continue
		}
		for k, v := range l.gW.RawMatrix().Data {
			if math.Abs(v-want[j][0][k]) > 1e-12 {
				t.Fatalf("layer %d weight %d: %g, brute force %g", i, k, v, want[j][0][k])
			}
		}
		for k, v := range l.gB.RawMatrix().Data {
			if math.Abs(v-want[j][1][k]) > 1e-12 {
				t.Fatalf("layer %d bias %d: %g, brute force %g", i, k, v, want[j][1][k])
			}
		}
		j++
	}
}

func TestDPTrainingLearnsAndNeedsASecretSeed(t *testing.T) {
	set := smallTrainSet(t, 2000)
	cfg := Config{Arch: model.Architecture{{Kind: model.KindDense, Out: 16}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}},
		Epochs: 4, BatchSize: 50, LearningRate: 3e-3, Seed: 7, DP: &DPSGD{Clip: 1, NoiseMultiplier: 1}}
	if _, err := Train(context.Background(), set, cfg); err == nil {
		t.Fatal("DP-SGD with the zero seed accepted")
	}
	cfg.DP.Seed = [32]byte{9, 9, 9}
	f, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if acc := FloatAccuracy(f, set); acc < 0.5 {
		t.Fatalf("DP training accuracy %.3f", acc)
	}
}
