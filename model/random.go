package model

import "math/rand/v2"

// RandomWeights returns the dense layer l with 8-bit weights drawn
// uniformly from rng (WeightBits is set to 8; the scale is 2^-WeightFrac)
// and random biases of l.BiasBits bits: the shape of a trained layer
// without the training, for benchmarks and tests whose cost depends on the
// matrix shapes, not on the weights' values.
func RandomWeights(rng *rand.Rand, l Layer) Layer {
	l.Kind, l.WeightBits = KindDense, 8
	l.W = make([]int32, l.In*l.Out)
	for i := range l.W {
		l.W[i] = int32(rng.IntN(256)) - 128
	}
	l.B = make([]int64, l.Out)
	for i := range l.B {
		l.B[i] = rng.Int64N(1<<(l.BiasBits-1)) - 1<<(l.BiasBits-2)
	}
	return l
}
