package model

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/veil-project/veil/pixels"
)

// Kind names a layer type.
type Kind string

// Layer kinds.
const (
	// KindDense is an affine layer: out = W·in + b.
	KindDense Kind = "dense"
	// KindSquare is the element-wise square activation: out = in².
	KindSquare Kind = "square"
	// KindPoly is an element-wise polynomial activation of low degree
	// (1 to MaxPolyDegree), with integer coefficients at a power-of-two
	// scale: typically a least-squares approximation of ReLU on the range
	// of pre-activations seen in training (see Approximation). Unlike
	// ReLU it is a polynomial, so CKKS and the circuit evaluate it exactly.
	KindPoly Kind = "poly"
)

// MaxPolyDegree bounds the degree of a polynomial activation: x³ of a
// 16-bit activation times a 24-bit coefficient still fits far below 2^60.
const MaxPolyDegree = 3

// maxCoeffBits bounds the magnitude of a polynomial coefficient.
const maxCoeffBits = 24

// Approximation records what a polynomial activation stands for: the
// function it approximates, the interval its least-squares fit covered
// and the largest error of the fit on that interval (in real units). It is
// a statement for the model's users, covered by the file's checksum; the
// network's function is the polynomial itself.
type Approximation struct {
	Function string  `json:"function"` // "relu"
	Lo       float64 `json:"lo"`
	Hi       float64 `json:"hi"`
	MaxError float64 `json:"max_error"`
	// ObservedLo and ObservedHi are the smallest and largest
	// pre-activations seen on the training images after training: values
	// outside [Lo, Hi] are where the polynomial departs from ReLU.
	ObservedLo float64 `json:"observed_lo"`
	ObservedHi float64 `json:"observed_hi"`
}

// InputBits is the bit width of an input pixel (0..255).
const InputBits = 8

// InputFrac is the number of fraction bits of the input: a pixel p stands
// for the real value p/256.
const InputFrac = 8

// Layer is one layer of the fixed-point network.
//
// Dense: acc_i = Σ_j W[i*In+j]·in_j + B_i, exact in integers, with
// Frac(acc) = Frac(in) + WeightFrac. Square: acc_i = in_i², with
// Frac(acc) = 2·Frac(in). Poly of degree d (d+1 coefficients C_k, real
// coefficient C_k/2^CoefFrac): acc_i = Σ_k C_k·in_i^k·2^((d-k)·Frac(in)),
// with Frac(acc) = CoefFrac + d·Frac(in). Then, when Shift > 0,
// out_i = floor((acc_i + 2^(Shift-1)) / 2^Shift) (round half up), and
// Frac(out) = Frac(acc) - Shift.
type Layer struct {
	Kind       Kind `json:"kind"`
	In         int  `json:"in"`
	Out        int  `json:"out"`
	WeightBits int  `json:"weight_bits,omitempty"` // weights lie in [-2^(WeightBits-1), 2^(WeightBits-1))
	WeightFrac int  `json:"weight_frac,omitempty"` // real weight = W / 2^WeightFrac
	BiasBits   int  `json:"bias_bits,omitempty"`   // biases lie in [-2^(BiasBits-1), 2^(BiasBits-1))
	Shift      int  `json:"shift"`
	// Coeffs are a poly layer's coefficients C_0..C_d (constant first).
	Coeffs []int64 `json:"coeffs,omitempty"`
	// CoefFrac is the fraction bits of Coeffs.
	CoefFrac int `json:"coef_frac,omitempty"`
	// Approx says what a poly layer approximates (informative).
	Approx *Approximation `json:"approx,omitempty"`
	W      []int32        `json:"-"` // Out×In, row-major
	B      []int64        `json:"-"` // Out, at the accumulator's scale
}

// Degree returns a poly layer's degree (0 for other kinds).
func (l *Layer) Degree() int {
	if l.Kind != KindPoly || len(l.Coeffs) == 0 {
		return 0
	}
	return len(l.Coeffs) - 1
}

// Model is the fixed-point network: the exact integer function that a model
// owner commits to.
type Model struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Layers      []Layer `json:"layers"`
	Classes     int     `json:"classes"`
}

// Interval is a closed integer interval [Lo, Hi].
type Interval struct{ Lo, Hi int64 }

// Bits returns the number of bits needed for Hi-Lo, i.e. the width of a range
// check of v-Lo for any v in the interval.
func (iv Interval) Bits() int { return bits.Len64(uint64(iv.Hi - iv.Lo)) }

// Validate checks that the layers are consistent with each other and that
// every value the network can compute fits comfortably in an int64 (so that
// Forward is exact) and in a BN254 scalar (so that the circuit is sound).
func (m *Model) Validate() error {
	if m.Name == "" {
		return errors.New("model has no name")
	}
	if len(m.Layers) == 0 {
		return errors.New("model has no layers")
	}
	in := pixels.Count
	for i, l := range m.Layers {
		if l.In != in {
			return fmt.Errorf("layer %d: input size %d, previous layer gives %d", i, l.In, in)
		}
		if l.Out <= 0 || l.Out > 1<<16 {
			return fmt.Errorf("layer %d: output size %d out of range", i, l.Out)
		}
		if l.Shift < 0 || l.Shift > 48 {
			return fmt.Errorf("layer %d: shift %d out of range [0, 48]", i, l.Shift)
		}
		switch l.Kind {
		case KindDense:
			if len(l.Coeffs) != 0 || l.CoefFrac != 0 || l.Approx != nil {
				return fmt.Errorf("layer %d: dense layer has polynomial coefficients", i)
			}
			if l.WeightBits < 2 || l.WeightBits > 16 {
				return fmt.Errorf("layer %d: weight_bits %d out of range [2, 16]", i, l.WeightBits)
			}
			if l.WeightFrac < 0 || l.WeightFrac > 32 {
				return fmt.Errorf("layer %d: weight_frac %d out of range [0, 32]", i, l.WeightFrac)
			}
			if l.BiasBits < 1 || l.BiasBits > 48 {
				return fmt.Errorf("layer %d: bias_bits %d out of range [1, 48]", i, l.BiasBits)
			}
			if len(l.W) != l.In*l.Out {
				return fmt.Errorf("layer %d: %d weights, want %d", i, len(l.W), l.In*l.Out)
			}
			if len(l.B) != l.Out {
				return fmt.Errorf("layer %d: %d biases, want %d", i, len(l.B), l.Out)
			}
			wlim := int32(1) << (l.WeightBits - 1)
			for k, w := range l.W {
				if w < -wlim || w >= wlim {
					return fmt.Errorf("layer %d: weight %d = %d does not fit in %d bits", i, k, w, l.WeightBits)
				}
			}
			blim := int64(1) << (l.BiasBits - 1)
			for k, b := range l.B {
				if b < -blim || b >= blim {
					return fmt.Errorf("layer %d: bias %d = %d does not fit in %d bits", i, k, b, l.BiasBits)
				}
			}
		case KindSquare:
			if l.Out != l.In {
				return fmt.Errorf("layer %d: square layer maps %d to %d values", i, l.In, l.Out)
			}
			if l.WeightBits != 0 || l.WeightFrac != 0 || l.BiasBits != 0 || len(l.W) != 0 || len(l.B) != 0 || len(l.Coeffs) != 0 || l.Approx != nil {
				return fmt.Errorf("layer %d: square layer has weights", i)
			}
		case KindPoly:
			if err := l.validatePoly(); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			// The terms are aligned by shifting coefficients left by
			// multiples of the input's fraction bits: keep them in int64.
			if f := m.Frac(i - 1); f < 0 || maxCoeffBits+l.Degree()*f > 60 {
				return fmt.Errorf("layer %d: poly layer on inputs with %d fraction bits (want 0 to %d)", i, f, (60-maxCoeffBits)/l.Degree())
			}
		default:
			return fmt.Errorf("layer %d: unknown kind %q", i, l.Kind)
		}
		in = l.Out
	}
	if in != m.Classes {
		return fmt.Errorf("last layer gives %d outputs, model has %d classes", in, m.Classes)
	}
	if m.Layers[len(m.Layers)-1].Kind != KindDense {
		return errors.New("last layer must be dense")
	}
	// Every intermediate value must stay far from int64 overflow. 2^60 also
	// leaves ample room in the 254-bit circuit field.
	for i, b := range m.Bounds() {
		for _, iv := range b.Acc {
			if iv.Lo < -(1<<60) || iv.Hi > 1<<60 {
				return fmt.Errorf("layer %d: accumulator may reach [%d, %d], beyond 2^60", i, iv.Lo, iv.Hi)
			}
		}
	}
	return nil
}

// validatePoly checks a poly layer on its own.
func (l *Layer) validatePoly() error {
	if l.Out != l.In {
		return fmt.Errorf("poly layer maps %d to %d values", l.In, l.Out)
	}
	if l.WeightBits != 0 || l.WeightFrac != 0 || l.BiasBits != 0 || len(l.W) != 0 || len(l.B) != 0 {
		return errors.New("poly layer has weights")
	}
	if d := len(l.Coeffs) - 1; d < 1 || d > MaxPolyDegree {
		return fmt.Errorf("poly layer has %d coefficients, want 2 to %d (degree 1 to %d)", len(l.Coeffs), MaxPolyDegree+1, MaxPolyDegree)
	}
	for k, c := range l.Coeffs {
		if c <= -(1<<maxCoeffBits) || c >= 1<<maxCoeffBits {
			return fmt.Errorf("poly coefficient %d = %d does not fit in %d bits", k, c, maxCoeffBits+1)
		}
	}
	if l.CoefFrac < 0 || l.CoefFrac > 32 {
		return fmt.Errorf("coef_frac %d out of range [0, 32]", l.CoefFrac)
	}
	if a := l.Approx; a != nil {
		finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
		switch {
		case a.Function != "relu":
			return fmt.Errorf("poly layer approximates %q; only \"relu\" is known", a.Function)
		case !finite(a.Lo) || !finite(a.Hi) || !(a.Lo < a.Hi):
			return fmt.Errorf("poly layer's fit range [%g, %g] is not an interval", a.Lo, a.Hi)
		case !finite(a.MaxError) || a.MaxError < 0:
			return fmt.Errorf("poly layer's max error %g is not a non-negative number", a.MaxError)
		case !finite(a.ObservedLo) || !finite(a.ObservedHi) || a.ObservedLo > a.ObservedHi:
			return fmt.Errorf("poly layer's observed range [%g, %g] is not an interval", a.ObservedLo, a.ObservedHi)
		}
	}
	return nil
}

// Frac returns the fraction bits of layer i's output (i = -1: the input).
func (m *Model) Frac(i int) int {
	f := InputFrac
	for k := 0; k <= i; k++ {
		l := m.Layers[k]
		switch l.Kind {
		case KindDense:
			f += l.WeightFrac
		case KindSquare:
			f *= 2
		case KindPoly:
			f = l.CoefFrac + l.Degree()*f
		}
		f -= l.Shift
	}
	return f
}

// OutputFrac returns the fraction bits of the network's outputs: a score
// s stands for the real value s / 2^OutputFrac.
func (m *Model) OutputFrac() int { return m.Frac(len(m.Layers) - 1) }

// round shifts v right by s bits, rounding half up (floor of (v+2^(s-1))/2^s).
func round(v int64, s int) int64 {
	if s == 0 {
		return v
	}
	return (v + 1<<(s-1)) >> s
}

// Forward runs the exact fixed-point network on one image and returns the
// integer scores (see OutputFrac for their scale).
func (m *Model) Forward(image []uint8) ([]int64, error) {
	if len(image) != pixels.Count {
		return nil, fmt.Errorf("input has %d pixels, want %d", len(image), pixels.Count)
	}
	x := make([]int64, pixels.Count)
	for i, p := range image {
		x[i] = int64(p)
	}
	for i, l := range m.Layers {
		x = l.forward(x, m.Frac(i-1))
	}
	return x, nil
}

// Trace runs the network and returns every layer's output (index 0 is the
// first layer's output). The circuit prover uses it to build the witness.
func (m *Model) Trace(image []uint8) ([][]int64, error) {
	if len(image) != pixels.Count {
		return nil, fmt.Errorf("input has %d pixels, want %d", len(image), pixels.Count)
	}
	x := make([]int64, pixels.Count)
	for i, p := range image {
		x[i] = int64(p)
	}
	out := make([][]int64, len(m.Layers))
	for i, l := range m.Layers {
		x = l.forward(x, m.Frac(i-1))
		out[i] = x
	}
	return out, nil
}

// forward applies the layer to x, whose fraction bits are inFrac (a poly
// layer aligns its terms with them).
func (l *Layer) forward(x []int64, inFrac int) []int64 {
	y := make([]int64, l.Out)
	switch l.Kind {
	case KindDense:
		for i := range y {
			acc := l.B[i]
			row := l.W[i*l.In : (i+1)*l.In]
			for j, w := range row {
				acc += int64(w) * x[j]
			}
			y[i] = round(acc, l.Shift)
		}
	case KindSquare:
		for i := range y {
			y[i] = round(x[i]*x[i], l.Shift)
		}
	case KindPoly:
		for i := range y {
			y[i] = round(l.polyAcc(x[i], inFrac), l.Shift)
		}
	}
	return y
}

// polyAcc is Σ_k C_k·v^k·2^((d-k)·inFrac), by Horner's rule:
// ((C_d·v + C_{d-1}·2^f)·v + C_{d-2}·2^2f)... keeps every term exact.
func (l *Layer) polyAcc(v int64, inFrac int) int64 {
	d := l.Degree()
	acc := l.Coeffs[d]
	for k := d - 1; k >= 0; k-- {
		acc = acc*v + l.Coeffs[k]<<((d-k)*inFrac)
	}
	return acc
}

// LayerBounds holds worst-case intervals for one layer, over every possible
// input image (all pixels in [0, 255]).
type LayerBounds struct {
	Acc []Interval // before the shift
	Out []Interval // after the shift
}

// Bounds computes, by interval arithmetic, the range of every accumulator and
// output over all possible inputs. The circuit sizes its range checks with
// them, so that any image, not only the training data, can be proven.
func (m *Model) Bounds() []LayerBounds {
	in := make([]Interval, pixels.Count)
	for i := range in {
		in[i] = Interval{0, 255}
	}
	res := make([]LayerBounds, len(m.Layers))
	for li, l := range m.Layers {
		acc := make([]Interval, l.Out)
		out := make([]Interval, l.Out)
		for i := 0; i < l.Out; i++ {
			switch l.Kind {
			case KindDense:
				lo, hi := l.B[i], l.B[i]
				for j := 0; j < l.In; j++ {
					w := int64(l.W[i*l.In+j])
					a, b := w*in[j].Lo, w*in[j].Hi
					lo += min(a, b)
					hi += max(a, b)
				}
				acc[i] = Interval{lo, hi}
			case KindSquare:
				a, b := in[i].Lo*in[i].Lo, in[i].Hi*in[i].Hi
				hi := max(a, b)
				lo := min(a, b)
				if in[i].Lo <= 0 && in[i].Hi >= 0 {
					lo = 0
				}
				acc[i] = Interval{lo, hi}
			case KindPoly:
				acc[i] = l.polyBounds(in[i], m.Frac(li-1))
			}
			out[i] = Interval{round(acc[i].Lo, l.Shift), round(acc[i].Hi, l.Shift)}
		}
		res[li] = LayerBounds{Acc: acc, Out: out}
		in = out
	}
	return res
}

// polyBounds bounds Σ_k C_k·v^k·2^((d-k)·f) over v in iv, term by term.
// Bounds beyond 2^60 saturate (Validate refuses them) instead of wrapping.
func (l *Layer) polyBounds(iv Interval, f int) Interval {
	d := l.Degree()
	fl := math.Max(math.Abs(float64(iv.Lo)), math.Abs(float64(iv.Hi)))
	var worst float64
	for k, c := range l.Coeffs {
		worst += math.Abs(float64(c)) * math.Pow(fl, float64(k)) * math.Ldexp(1, (d-k)*f)
	}
	if worst > 1<<60 {
		return Interval{-(1 << 62), 1 << 62}
	}
	var res Interval
	for k, c := range l.Coeffs {
		// v^k over iv.
		plo, phi := int64(1), int64(1)
		for j := 0; j < k; j++ {
			cands := []int64{plo * iv.Lo, plo * iv.Hi, phi * iv.Lo, phi * iv.Hi}
			plo, phi = slices.Min(cands), slices.Max(cands)
		}
		if k%2 == 0 && k > 0 && iv.Lo <= 0 && iv.Hi >= 0 {
			plo = 0
		}
		s := c << ((d - k) * f)
		a, b := s*plo, s*phi
		res.Lo += min(a, b)
		res.Hi += max(a, b)
	}
	return res
}

// NumWeights returns the number of weights and biases.
func (m *Model) NumWeights() int {
	n := 0
	for _, l := range m.Layers {
		n += len(l.W) + len(l.B)
	}
	return n
}

// Class returns the index of the largest score (the first one on ties).
func Class[T int64 | float64](scores []T) int {
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return best
}

// Scale returns 2^-OutputFrac: multiply an integer score by it to get the
// real score.
func (m *Model) Scale() float64 { return math.Ldexp(1, -m.OutputFrac()) }
