package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/veil-project/veil/pixels"
)

// fitPoints is the number of evenly spaced points of a ReLU fit.
const fitPoints = 2001

// FitReLU returns the least-squares polynomial of the given degree to
// max(0, x) on evenly spaced points of [lo, hi] (coefficients constant
// first) and its largest error on those points.
func FitReLU(degree int, lo, hi float64) ([]float64, float64, error) {
	if degree < 1 || degree > MaxPolyDegree {
		return nil, 0, fmt.Errorf("fit ReLU: degree %d out of range [1, %d]", degree, MaxPolyDegree)
	}
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || !(lo < hi) {
		return nil, 0, fmt.Errorf("fit ReLU: [%g, %g] is not an interval", lo, hi)
	}
	// Fit in t = (x - mid)/half in [-1, 1] (well conditioned), then expand
	// back to powers of x.
	mid, half := (lo+hi)/2, (hi-lo)/2
	// Normal equations (A^T A) c = A^T b of the Vandermonde matrix in t:
	// at most 4×4 and well conditioned on [-1, 1], so Gaussian elimination
	// with partial pivoting (no linear-algebra dependency: consensus code
	// links this package).
	n := degree + 1
	ata := make([][]float64, n)
	for i := range ata {
		ata[i] = make([]float64, n+1)
	}
	for i := range fitPoints {
		t := -1 + 2*float64(i)/float64(fitPoints-1)
		y := math.Max(0, mid+half*t)
		pw := make([]float64, n)
		p := 1.0
		for k := range pw {
			pw[k] = p
			p *= t
		}
		for r := 0; r < n; r++ {
			for c := 0; c < n; c++ {
				ata[r][c] += pw[r] * pw[c]
			}
			ata[r][n] += pw[r] * y
		}
	}
	ctv, err := solveSmall(ata)
	if err != nil {
		return nil, 0, fmt.Errorf("fit ReLU: %w", err)
	}
	// p(x) = Σ_k ct_k·((x - mid)/half)^k, expanded by the binomial theorem.
	c := make([]float64, degree+1)
	for k := 0; k <= degree; k++ {
		s := ctv[k] / math.Pow(half, float64(k))
		for j := 0; j <= k; j++ {
			c[j] += s * binom(k, j) * math.Pow(-mid, float64(k-j))
		}
	}
	var maxErr float64
	for i := range fitPoints {
		x := lo + (hi-lo)*float64(i)/float64(fitPoints-1)
		maxErr = math.Max(maxErr, math.Abs(Poly(c, x)-math.Max(0, x)))
	}
	if math.IsNaN(maxErr) {
		return nil, 0, errors.New("fit ReLU: the fit is not a number")
	}
	return c, maxErr, nil
}

// solveSmall solves the augmented system m (n rows of n+1 values) by
// Gaussian elimination with partial pivoting.
func solveSmall(m [][]float64) ([]float64, error) {
	n := len(m)
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return nil, errors.New("singular system")
		}
		m[c], m[p] = m[p], m[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k <= n; k++ {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		v := m[r][n]
		for k := r + 1; k < n; k++ {
			v -= m[r][k] * x[k]
		}
		x[r] = v / m[r][r]
	}
	return x, nil
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return r
}

// RandomFloat returns a float network of the given architecture with
// random weights (uniform, scaled by 1/√fan-in) and, for poly layers, the
// least-squares ReLU fit on [-2, 3]: a network of the right shape and
// magnitudes for tests and benchmarks whose results do not depend on
// training.
func RandomFloat(rng *rand.Rand, arch Architecture) (*Float, error) {
	f := &Float{}
	in := pixels.Count
	for i, s := range arch {
		l := FloatLayer{Kind: s.Kind, In: in, Out: in}
		switch s.Kind {
		case KindDense:
			l.Out = s.Out
			lim := 1.7 / math.Sqrt(float64(in))
			if i == 0 {
				lim *= 3 // pixels are small: most are 0
			}
			l.W = make([]float64, in*s.Out)
			for k := range l.W {
				l.W[k] = (2*rng.Float64() - 1) * lim
			}
			l.B = make([]float64, s.Out)
			for k := range l.B {
				l.B[k] = (2*rng.Float64() - 1) * 0.1
			}
		case KindPoly:
			// An asymmetric range: on a symmetric one the odd terms
			// above x vanish.
			c, e, err := FitReLU(s.Degree, -2, 3)
			if err != nil {
				return nil, err
			}
			l.Coeffs = c
			l.Approx = &Approximation{Function: "relu", Lo: -2, Hi: 3, MaxError: e, ObservedLo: -2, ObservedHi: 3}
		case KindSquare:
		default:
			return nil, fmt.Errorf("random network: unknown layer kind %q", s.Kind)
		}
		f.Layers = append(f.Layers, l)
		in = l.Out
	}
	return f, nil
}
