package zk

import (
	"math/rand/v2"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// tinyModel is 784 -dense-> 4 -square-> -dense-> 10 with random 8-bit
// weights: the default model's layer kinds at a size that tests solve in
// seconds.
func tinyModel(seed uint64) *model.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	dense := func(in, out, bb, shift int) model.Layer {
		l := model.Layer{Kind: model.KindDense, In: in, Out: out, WeightBits: 8, WeightFrac: 7, BiasBits: bb, Shift: shift}
		l.W = make([]int32, in*out)
		for i := range l.W {
			l.W[i] = int32(rng.IntN(256)) - 128
		}
		l.B = make([]int64, out)
		for i := range l.B {
			l.B[i] = rng.Int64N(1<<(bb-1)) - 1<<(bb-2)
		}
		return l
	}
	m := &model.Model{
		Name:    "tiny",
		Classes: 10,
		Layers: []model.Layer{
			dense(784, 4, 17, 7),
			{Kind: model.KindSquare, In: 4, Out: 4, Shift: 16},
			dense(4, 10, 13, 0),
		},
	}
	if err := m.Validate(); err != nil {
		panic(err)
	}
	return m
}

func randomImages(seed uint64, n int) []dataset.Image {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]dataset.Image, n)
	for k := range out {
		for i := range out[k] {
			// Mostly dark pixels with strokes, like MNIST.
			if rng.IntN(4) == 0 {
				out[k][i] = uint8(rng.IntN(256))
			}
		}
	}
	return out
}
