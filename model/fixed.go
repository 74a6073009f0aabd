package model

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

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
)

// InputBits is the bit width of an input pixel (0..255).
const InputBits = 8

// InputFrac is the number of fraction bits of the input: a pixel p stands
// for the real value p/256.
const InputFrac = 8

// Layer is one layer of the fixed-point network.
//
// Dense: acc_i = Σ_j W[i*In+j]·in_j + B_i, exact in integers, with
// Frac(acc) = Frac(in) + WeightFrac. Square: acc_i = in_i², with
// Frac(acc) = 2·Frac(in). Then, when Shift > 0,
// out_i = floor((acc_i + 2^(Shift-1)) / 2^Shift) (round half up), and
// Frac(out) = Frac(acc) - Shift.
type Layer struct {
	Kind       Kind    `json:"kind"`
	In         int     `json:"in"`
	Out        int     `json:"out"`
	WeightBits int     `json:"weight_bits,omitempty"` // weights lie in [-2^(WeightBits-1), 2^(WeightBits-1))
	WeightFrac int     `json:"weight_frac,omitempty"` // real weight = W / 2^WeightFrac
	BiasBits   int     `json:"bias_bits,omitempty"`   // biases lie in [-2^(BiasBits-1), 2^(BiasBits-1))
	Shift      int     `json:"shift"`
	W          []int32 `json:"-"` // Out×In, row-major
	B          []int64 `json:"-"` // Out, at the accumulator's scale
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
			if l.WeightBits != 0 || l.WeightFrac != 0 || l.BiasBits != 0 || len(l.W) != 0 || len(l.B) != 0 {
				return fmt.Errorf("layer %d: square layer has weights", i)
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
	for _, l := range m.Layers {
		x = l.forward(x)
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
		x = l.forward(x)
		out[i] = x
	}
	return out, nil
}

func (l *Layer) forward(x []int64) []int64 {
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
	}
	return y
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
			}
			out[i] = Interval{round(acc[i].Lo, l.Shift), round(acc[i].Hi, l.Shift)}
		}
		res[li] = LayerBounds{Acc: acc, Out: out}
		in = out
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
