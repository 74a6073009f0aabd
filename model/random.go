package model

import "math/rand/v2"

// RandomDense returns a dense layer in→out with 8-bit weights drawn
// uniformly from rng (scale 2^-weightFrac) and biasBits-bit biases: the
// shape of a trained layer without the training, for benchmarks and tests
// whose cost depends on the matrix shapes, not on the weights' values.
func RandomDense(rng *rand.Rand, in, out, weightFrac, biasBits, shift int) Layer {
	l := Layer{Kind: KindDense, In: in, Out: out, WeightBits: 8, WeightFrac: weightFrac, BiasBits: biasBits, Shift: shift}
	l.W = make([]int32, in*out)
	for i := range l.W {
		l.W[i] = int32(rng.IntN(256)) - 128
	}
	l.B = make([]int64, out)
	for i := range l.B {
		l.B[i] = rng.Int64N(1<<(biasBits-1)) - 1<<(biasBits-2)
	}
	return l
}
