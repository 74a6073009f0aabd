package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/veil-project/veil/pixels"
)

// LayerSpec describes one layer of an architecture to train.
type LayerSpec struct {
	Kind   Kind
	Out    int // dense only
	Degree int // poly only: the degree of the ReLU approximation
}

// Architecture is a sequence of layers applied to the pixels.Count input
// pixels.
type Architecture []LayerSpec

// DefaultArchitecture is Veil's default MNIST network: a linear projection to
// 32 features, a dense layer of 128 units, the square activation and a
// dense output layer. The projection keeps the committed weights (and so
// the zk-SNARK) small: 784·32 + 32·128 + 128·10 weights instead of 784·128 +
// 128·10, while the network stays a degree-2 polynomial classifier.
var DefaultArchitecture = Architecture{
	{Kind: KindDense, Out: 32},
	{Kind: KindDense, Out: 128},
	{Kind: KindSquare},
	{Kind: KindDense, Out: 10},
}

// ArchitectureOf returns the layer specification of a fixed-point model.
func ArchitectureOf(m *Model) Architecture {
	a := make(Architecture, len(m.Layers))
	for i, l := range m.Layers {
		a[i] = LayerSpec{Kind: l.Kind}
		if l.Kind == KindDense {
			a[i].Out = l.Out
		}
		if l.Kind == KindPoly {
			a[i].Degree = l.Degree()
		}
	}
	return a
}

// String gives a compact form such as "784-32-128-sq-10".
func (a Architecture) String() string {
	s := fmt.Sprint(pixels.Count)
	for _, l := range a {
		switch l.Kind {
		case KindSquare:
			s += "-sq"
		case KindPoly:
			s += fmt.Sprintf("-relu%d", l.Degree)
		default:
			s += fmt.Sprintf("-%d", l.Out)
		}
	}
	return s
}

// maxArchLayers bounds the layers of a parsed architecture.
const maxArchLayers = 32

// ParseArchitecture reads the layers after the inputs as a comma-separated
// list: dense layer sizes, "sq" for the square activation and "reluD"
// (D = 1 to MaxPolyDegree) for a degree-D polynomial approximation of ReLU
// fitted in training, e.g. "32,128,sq,10" or "128,relu2,64,relu2,10". The
// first and last layers must be dense (the last one of 10 outputs), and
// two activations must not follow each other.
func ParseArchitecture(s string) (Architecture, error) {
	var a Architecture
	fields := strings.Split(s, ",")
	if len(fields) > maxArchLayers {
		return nil, fmt.Errorf("%d layers, at most %d", len(fields), maxArchLayers)
	}
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "sq" {
			a = append(a, LayerSpec{Kind: KindSquare})
			continue
		}
		if d, ok := strings.CutPrefix(f, "relu"); ok {
			n, err := strconv.Atoi(d)
			if err != nil || n < 1 || n > MaxPolyDegree || strconv.Itoa(n) != d {
				return nil, fmt.Errorf("layer %q: a ReLU approximation needs a degree from 1 to %d, e.g. relu2", f, MaxPolyDegree)
			}
			a = append(a, LayerSpec{Kind: KindPoly, Degree: n})
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 4096 || strconv.Itoa(n) != f {
			return nil, fmt.Errorf("layer %q is neither a size in [1, 4096], 'sq' nor 'reluD'", f)
		}
		a = append(a, LayerSpec{Kind: KindDense, Out: n})
	}
	if len(a) == 0 || a[len(a)-1].Kind != KindDense || a[len(a)-1].Out != 10 {
		return nil, fmt.Errorf("the last layer must be a dense layer of 10")
	}
	if a[0].Kind != KindDense {
		return nil, fmt.Errorf("the first layer must be dense")
	}
	for i := 1; i < len(a); i++ {
		if a[i].Kind != KindDense && a[i-1].Kind != KindDense {
			return nil, fmt.Errorf("layers %d and %d are both activations", i, i+1)
		}
	}
	return a, nil
}
