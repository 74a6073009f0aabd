package training

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/veil-project/veil/model"
)

// DPSGD configures differentially private training (Abadi et al., 2016):
// each step draws a Poisson sample (every example with probability
// q = BatchSize/n), clips each example's gradient to L2 norm Clip, adds
// Gaussian noise of standard deviation NoiseMultiplier·Clip to their sum
// and divides by BatchSize. The sampling and the noise come from a ChaCha8
// stream keyed by Seed, which must be secret and fresh: noise an adversary
// can recompute protects nothing. DPEpsilon gives the guarantee.
type DPSGD struct {
	Clip            float64
	NoiseMultiplier float64
	Seed            [32]byte
}

func (d *DPSGD) check() error {
	if d == nil {
		return nil
	}
	if !(d.Clip > 0) || !(d.NoiseMultiplier > 0) {
		return errors.New("DP-SGD needs a positive clip norm and noise multiplier")
	}
	if d.Seed == ([32]byte{}) {
		return errors.New("DP-SGD needs a secret random seed for its sampling and noise")
	}
	return nil
}

// dpBackward computes every dense layer's gradient as DP-SGD's noisy sum
// of clipped per-example gradients divided by batch. grad holds the
// per-example output gradients divided by batch (one row per example);
// empty means the Poisson sample was empty (the one row is a placeholder).
//
// A dense layer's per-example weight gradient is the outer product
// g_r x_rᵀ, of norm |g_r|·|x_r|, so the per-example norms come from the
// row norms of each layer's input and output gradient, and the clipped sum
// is (c ∘ G)ᵀ X with c_r = min(1, Clip/norm_r): no per-example matrices.
func dpBackward(layers []*trainLayer, grad *mat.Dense, dp *DPSGD, empty bool, batch float64, rng *rand.Rand) {
	rows := grad.RawMatrix().Rows
	outGrads := make([]*mat.Dense, len(layers))
	g := mat.DenseCopyOf(grad)
	g.Scale(batch, g) // per-example gradients
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		switch l.spec.Kind {
		case model.KindDense:
			outGrads[i] = g
			if i > 0 {
				next := mat.NewDense(rows, l.in, nil)
				next.Mul(g, l.W.w)
				g = next
			}
		case model.KindSquare:
			next := mat.NewDense(rows, l.in, nil)
			next.MulElem(g, l.x)
			next.Scale(2, next)
			g = next
		case model.KindPoly:
			g = l.backward(g, 1)
		}
	}
	norm2 := make([]float64, rows)
	for i, l := range layers {
		if outGrads[i] == nil {
			continue
		}
		for r := range rows {
			gr, xr := outGrads[i].RawRowView(r), l.x.RawRowView(r)
			var a, b float64
			for _, v := range gr {
				a += v * v
			}
			for _, v := range xr {
				b += v * v
			}
			norm2[r] += a * (b + 1) // weights and bias
		}
	}
	scale := make([]float64, rows)
	for r := range rows {
		if !empty {
			scale[r] = math.Min(1, dp.Clip/math.Max(math.Sqrt(norm2[r]), 1e-12))
		}
	}
	sigma := dp.NoiseMultiplier * dp.Clip
	for i, l := range layers {
		G := outGrads[i]
		if G == nil {
			continue
		}
		c := mat.DenseCopyOf(G)
		for r := range rows {
			row := c.RawRowView(r)
			for k := range row {
				row[k] *= scale[r]
			}
		}
		l.gW.Mul(c.T(), l.x)
		gb := l.gB.RawRowView(0)
		for k := range gb {
			gb[k] = 0
		}
		for r := range rows {
			for k, v := range c.RawRowView(r) {
				gb[k] += v
			}
		}
		for _, m := range []*mat.Dense{l.gW, l.gB} {
			data := m.RawMatrix().Data
			for k := range data {
				data[k] = (data[k] + sigma*rng.NormFloat64()) / batch
			}
		}
	}
}

// DPEpsilon returns the (ε, δ) guarantee of DP-SGD with sampling rate q,
// noise multiplier sigma and the given number of steps, by the Rényi DP
// of the Poisson-subsampled Gaussian mechanism at integer orders α (Mironov,
// Talwar and Zhang, 2019, §3.3):
//
//	ε_α = log( Σ_{k=0..α} C(α,k) (1-q)^(α-k) q^k exp((k²-k)/(2σ²)) ) / (α-1)
//
// composed over the steps and converted with ε = steps·ε_α + log(1/δ)/(α-1),
// minimised over α in 2..256. It returns the best order too.
func DPEpsilon(q, sigma float64, steps int, delta float64) (float64, int, error) {
	if !(q > 0 && q <= 1) || !(sigma > 0) || steps < 1 || !(delta > 0 && delta < 1) {
		return 0, 0, fmt.Errorf("DP epsilon: q = %g, sigma = %g, steps = %d, delta = %g out of range", q, sigma, steps, delta)
	}
	best, bestOrder := math.Inf(1), 0
	for alpha := 2; alpha <= 256; alpha++ {
		eps := float64(steps)*rdpSampledGaussian(q, sigma, alpha) + math.Log(1/delta)/float64(alpha-1)
		if eps < best {
			best, bestOrder = eps, alpha
		}
	}
	return best, bestOrder, nil
}

// rdpSampledGaussian is ε_α of one step, computed in log space.
func rdpSampledGaussian(q, sigma float64, alpha int) float64 {
	if q == 1 {
		return float64(alpha) / (2 * sigma * sigma)
	}
	terms := make([]float64, alpha+1)
	mx := math.Inf(-1)
	for k := 0; k <= alpha; k++ {
		lg, _ := math.Lgamma(float64(alpha + 1))
		lk, _ := math.Lgamma(float64(k + 1))
		lak, _ := math.Lgamma(float64(alpha - k + 1))
		t := lg - lk - lak + float64(alpha-k)*math.Log1p(-q) + float64(k)*math.Log(q) + float64(k*k-k)/(2*sigma*sigma)
		terms[k] = t
		mx = math.Max(mx, t)
	}
	var sum float64
	for _, t := range terms {
		sum += math.Exp(t - mx)
	}
	return (mx + math.Log(sum)) / float64(alpha-1)
}
