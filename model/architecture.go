package model

import (
	"fmt"

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
