package zk

import (
	"math/rand/v2"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
)

// tinyModel is testmodels.Tiny: the default model's layer kinds at a size
// that tests solve in seconds.
func tinyModel(seed uint64) *model.Model { return testmodels.Tiny(seed) }

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
