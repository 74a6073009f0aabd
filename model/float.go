package model

import (
	"fmt"
	"math"
)

// FloatLayer is a layer with float64 weights.
type FloatLayer struct {
	Kind    Kind
	In, Out int
	W       []float64 // Out×In, row-major; dense only
	B       []float64 // Out; dense only
	// Coeffs are a poly layer's coefficients, constant first; Approx what
	// they approximate.
	Coeffs []float64
	Approx *Approximation
}

// Poly evaluates the polynomial with coefficients c (constant first) at x.
func Poly(c []float64, x float64) float64 {
	var y float64
	for k := len(c) - 1; k >= 0; k-- {
		y = y*x + c[k]
	}
	return y
}

// Float is a network with float64 weights. Inputs are pixels divided by 256.
type Float struct {
	Layers []FloatLayer
}

// Forward evaluates the network on one input vector.
func (f *Float) Forward(x []float64) []float64 {
	for _, l := range f.Layers {
		y := make([]float64, l.Out)
		switch l.Kind {
		case KindDense:
			for i := range y {
				acc := l.B[i]
				row := l.W[i*l.In : (i+1)*l.In]
				for j, w := range row {
					acc += w * x[j]
				}
				y[i] = acc
			}
		case KindSquare:
			for i := range y {
				y[i] = x[i] * x[i]
			}
		case KindPoly:
			for i := range y {
				y[i] = Poly(l.Coeffs, x[i])
			}
		}
		x = y
	}
	return x
}

// PixelsToInput maps 8-bit pixels to the network's real-valued input.
func PixelsToInput(p []uint8) []float64 {
	x := make([]float64, len(p))
	for i, v := range p {
		x[i] = float64(v) / (1 << InputFrac)
	}
	return x
}

// Dequantize returns the fixed-point model's weights as float64, without the
// intermediate roundings. It is the function that CKKS evaluates: its outputs
// differ from Forward's (scaled by 2^-OutputFrac) only by the rounding of
// intermediate values.
func (m *Model) Dequantize() *Float {
	f := &Float{Layers: make([]FloatLayer, len(m.Layers))}
	for i, l := range m.Layers {
		fl := FloatLayer{Kind: l.Kind, In: l.In, Out: l.Out}
		if l.Kind == KindDense {
			ws := math.Ldexp(1, -l.WeightFrac)
			bs := math.Ldexp(1, -(m.Frac(i-1) + l.WeightFrac))
			fl.W = make([]float64, len(l.W))
			for k, w := range l.W {
				fl.W[k] = float64(w) * ws
			}
			fl.B = make([]float64, len(l.B))
			for k, b := range l.B {
				fl.B[k] = float64(b) * bs
			}
		}
		if l.Kind == KindPoly {
			cs := math.Ldexp(1, -l.CoefFrac)
			fl.Coeffs = make([]float64, len(l.Coeffs))
			for k, c := range l.Coeffs {
				fl.Coeffs[k] = float64(c) * cs
			}
			fl.Approx = l.Approx
		}
		f.Layers[i] = fl
	}
	return f
}

// RealCoeffs returns a poly layer's real coefficients, constant first (nil
// for other kinds).
func (l *Layer) RealCoeffs() []float64 {
	if l.Kind != KindPoly {
		return nil
	}
	cs := math.Ldexp(1, -l.CoefFrac)
	out := make([]float64, len(l.Coeffs))
	for k, c := range l.Coeffs {
		out[k] = float64(c) * cs
	}
	return out
}

// QuantizeOptions controls the conversion of a float network to fixed point.
type QuantizeOptions struct {
	WeightBits int // bits per weight, e.g. 8
	// ActivationBits is the target width of intermediate values: each
	// layer's shift is chosen so that the largest value seen on the
	// calibration inputs fits in this many bits (sign included).
	ActivationBits int
	// Calibration inputs (pixels), e.g. a few thousand training images.
	Calibration [][]uint8
}

// Quantize converts a float network to fixed point. Weights get one
// power-of-two scale per layer, the largest that keeps every weight within
// WeightBits. Shifts are calibrated on sample inputs.
func Quantize(f *Float, name string, opt QuantizeOptions) (*Model, error) {
	if opt.WeightBits < 2 || opt.WeightBits > 16 {
		return nil, fmt.Errorf("quantize: weight bits %d out of range [2, 16]", opt.WeightBits)
	}
	if opt.ActivationBits < 4 || opt.ActivationBits > 30 {
		return nil, fmt.Errorf("quantize: activation bits %d out of range [4, 30]", opt.ActivationBits)
	}
	if len(opt.Calibration) == 0 {
		return nil, fmt.Errorf("quantize: no calibration inputs")
	}
	m := &Model{Name: name, Classes: f.Layers[len(f.Layers)-1].Out}
	// Integer activations of the calibration set, layer by layer.
	acts := make([][]int64, len(opt.Calibration))
	for n, p := range opt.Calibration {
		acts[n] = make([]int64, len(p))
		for i, v := range p {
			acts[n][i] = int64(v)
		}
	}
	frac := InputFrac
	wmax := float64(int64(1)<<(opt.WeightBits-1)) - 1
	for li, fl := range f.Layers {
		l := Layer{Kind: fl.Kind, In: fl.In, Out: fl.Out}
		accFrac := 2 * frac
		if fl.Kind == KindDense {
			var amax float64
			for _, w := range fl.W {
				amax = math.Max(amax, math.Abs(w))
			}
			if amax == 0 {
				amax = 1
			}
			l.WeightBits = opt.WeightBits
			l.WeightFrac = int(math.Floor(math.Log2(wmax / amax)))
			l.WeightFrac = max(0, min(32, l.WeightFrac))
			ws := math.Ldexp(1, l.WeightFrac)
			l.W = make([]int32, len(fl.W))
			for k, w := range fl.W {
				l.W[k] = int32(math.Round(w * ws))
			}
			accFrac = frac + l.WeightFrac
			bs := math.Ldexp(1, accFrac)
			l.B = make([]int64, len(fl.B))
			var bmax int64
			for k, b := range fl.B {
				l.B[k] = int64(math.Round(b * bs))
				bmax = max(bmax, abs64(l.B[k]))
			}
			l.BiasBits = bitsSigned(bmax)
		}
		if fl.Kind == KindPoly {
			if len(fl.Coeffs) < 2 || len(fl.Coeffs) > MaxPolyDegree+1 {
				return nil, fmt.Errorf("quantize: layer %d has %d polynomial coefficients", li, len(fl.Coeffs))
			}
			if d := len(fl.Coeffs) - 1; d*opt.ActivationBits+polyCoeffBits > 60 {
				return nil, fmt.Errorf("quantize: layer %d: %d-bit activations are too wide for a degree-%d polynomial (at most %d bits)", li, opt.ActivationBits, d, (60-polyCoeffBits)/d)
			}
			var cmax float64
			for _, c := range fl.Coeffs {
				cmax = math.Max(cmax, math.Abs(c))
			}
			// Coefficients get polyCoeffBits bits: the scale is the
			// largest power of two that keeps the largest one in range.
			cmaxInt := float64(int64(1)<<(polyCoeffBits-1)) - 1
			l.CoefFrac = max(0, min(32, int(math.Floor(math.Log2(cmaxInt/cmax)))))
			cs := math.Ldexp(1, l.CoefFrac)
			l.Coeffs = make([]int64, len(fl.Coeffs))
			for k, c := range fl.Coeffs {
				l.Coeffs[k] = int64(math.Round(c * cs))
			}
			l.Approx = fl.Approx
			accFrac = l.CoefFrac + l.Degree()*frac
		}
		// Accumulators on the calibration set, to choose the shift.
		last := li == len(f.Layers)-1
		var peak int64
		accs := make([][]int64, len(acts))
		for n, x := range acts {
			l.Shift = 0
			accs[n] = l.forward(x, frac)
			for _, v := range accs[n] {
				peak = max(peak, abs64(v))
			}
		}
		if !last {
			// Leave one bit of headroom above the calibration peak.
			l.Shift = max(0, bitsSigned(peak)+1-opt.ActivationBits)
		}
		for n := range accs {
			for i, v := range accs[n] {
				accs[n][i] = round(v, l.Shift)
			}
		}
		acts = accs
		frac = accFrac - l.Shift
		m.Layers = append(m.Layers, l)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	return m, nil
}

// polyCoeffBits is the width of a quantised polynomial coefficient.
const polyCoeffBits = 16

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// bitsSigned returns the bits of a signed integer that holds ±v.
func bitsSigned(v int64) int {
	n := 1
	for n < 63 && (int64(1)<<(n-1)) <= v {
		n++
	}
	return n
}
