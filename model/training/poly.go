package training

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// polyFitImages is the number of training images whose pre-activations
// set a poly layer's fit range and observed range.
const polyFitImages = 2000

// polySample draws the images that fit and observe the polynomials. It
// draws from its own generator so that the training of architectures
// without poly layers (the default model's) is unchanged.
func polySample(train *dataset.Set, seed uint64) *mat.Dense {
	r := rand.New(rand.NewPCG(seed, 0x706f6c79))
	n := min(polyFitImages, train.Len())
	x := mat.NewDense(n, pixels.Count, nil)
	for i := range n {
		img := train.Images[r.IntN(train.Len())]
		row := x.RawRowView(i)
		for k, p := range img {
			row[k] = float64(p) / (1 << model.InputFrac)
		}
	}
	return x
}

func hasPoly(a model.Architecture) bool {
	for _, s := range a {
		if s.Kind == model.KindPoly {
			return true
		}
	}
	return false
}

func hasUnfitted(layers []*trainLayer) bool {
	for _, l := range layers {
		if l.spec.Kind == model.KindPoly && l.coeffs == nil {
			return true
		}
	}
	return false
}

// activate applies a poly layer: ReLU before its fit, the polynomial after.
func (l *trainLayer) activate(x *mat.Dense) *mat.Dense {
	z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
	src, dst := x.RawMatrix().Data, z.RawMatrix().Data
	for k, v := range src {
		if l.coeffs == nil {
			dst[k] = math.Max(0, v)
		} else {
			dst[k] = model.Poly(l.coeffs, v)
		}
	}
	return z
}

// backward returns the input gradient of a poly layer: grad·p'(x), plus
// the gradient of penalty·Σ dist(x, [lo, hi])²/2 that keeps
// pre-activations in the fitted range.
func (l *trainLayer) backward(grad *mat.Dense, penalty float64) *mat.Dense {
	next := mat.NewDense(grad.RawMatrix().Rows, l.in, nil)
	g, x, dst := grad.RawMatrix().Data, l.x.RawMatrix().Data, next.RawMatrix().Data
	for k, v := range x {
		if l.coeffs == nil {
			if v > 0 {
				dst[k] = g[k]
			}
			continue
		}
		var d float64
		for j := len(l.coeffs) - 1; j >= 1; j-- {
			d = d*v + float64(j)*l.coeffs[j]
		}
		dst[k] = g[k] * d
		if v < l.approx.Lo {
			dst[k] += penalty * (v - l.approx.Lo)
		} else if v > l.approx.Hi {
			dst[k] += penalty * (v - l.approx.Hi)
		}
	}
	return next
}

// preActivations runs the sample up to each poly layer and calls f with
// the layer and its input.
func preActivations(layers []*trainLayer, sample *mat.Dense, f func(l *trainLayer, x *mat.Dense) error) error {
	x := sample
	for _, l := range layers {
		switch l.spec.Kind {
		case model.KindDense:
			z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
			z.Mul(x, l.W.w.T())
			bias := l.B.w.RawRowView(0)
			for r := 0; r < z.RawMatrix().Rows; r++ {
				row := z.RawRowView(r)
				for k := range row {
					row[k] += bias[k]
				}
			}
			x = z
		case model.KindSquare:
			z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
			z.MulElem(x, x)
			x = z
		case model.KindPoly:
			if err := f(l, x); err != nil {
				return err
			}
			x = l.activate(x)
		}
	}
	return nil
}

// fitPolys fits every unfitted poly layer, first to last (a layer's
// pre-activations depend on the polynomials before it).
func fitPolys(layers []*trainLayer, sample *mat.Dense) error {
	return preActivations(layers, sample, func(l *trainLayer, x *mat.Dense) error {
		if l.coeffs != nil {
			return nil
		}
		v := slices.Clone(x.RawMatrix().Data)
		slices.Sort(v)
		lo, hi := v[len(v)/1000], v[len(v)-1-len(v)/1000]
		if !(hi-lo > 1e-6) {
			lo, hi = lo-1, hi+1
		}
		c, maxErr, err := model.FitReLU(l.spec.Degree, lo, hi)
		if err != nil {
			return err
		}
		l.coeffs = c
		l.approx = &model.Approximation{Function: "relu", Lo: lo, Hi: hi, MaxError: maxErr}
		return nil
	})
}

// observePolys records the range of each poly layer's pre-activations.
func observePolys(layers []*trainLayer, sample *mat.Dense) {
	_ = preActivations(layers, sample, func(l *trainLayer, x *mat.Dense) error {
		d := x.RawMatrix().Data
		l.approx.ObservedLo, l.approx.ObservedHi = slices.Min(d), slices.Max(d)
		return nil
	})
}
