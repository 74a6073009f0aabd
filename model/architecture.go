package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/veil-project/veil/pixels"
)

// LayerSpec describes one layer of an architecture to train.
type LayerSpec struct {
	Kind Kind
	Out  int // dense only
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
	}
	return a
}

// String gives a compact form such as "784-32-128-sq-10".
func (a Architecture) String() string {
	s := fmt.Sprint(pixels.Count)
	for _, l := range a {
		if l.Kind == KindSquare {
			s += "-sq"
		} else {
			s += fmt.Sprintf("-%d", l.Out)
		}
	}
	return s
}

// ParseArchitecture reads the layers after the inputs as a comma-separated
// list: dense layer sizes and "sq" for the square activation, e.g.
// "32,128,sq,10". The last layer must be a dense layer of 10.
func ParseArchitecture(s string) (Architecture, error) {
	var a Architecture
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "sq" {
			a = append(a, LayerSpec{Kind: KindSquare})
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 4096 {
			return nil, fmt.Errorf("layer %q is neither a size in [1, 4096] nor 'sq'", f)
		}
		a = append(a, LayerSpec{Kind: KindDense, Out: n})
	}
	if len(a) == 0 || a[len(a)-1].Kind != KindDense || a[len(a)-1].Out != 10 {
		return nil, fmt.Errorf("the last layer must be a dense layer of 10")
	}
	return a, nil
}
