package dataset

import (
	"math/rand/v2"

	"github.com/veil-project/veil/pixels"
)

// RandomImages returns n deterministic MNIST-like images drawn from seed:
// mostly dark, a quarter of the pixels random (strokes), for tests and
// benchmark runs that do not need the MNIST files.
func RandomImages(seed uint64, n int) []pixels.Image {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]pixels.Image, n)
	for k := range out {
		for i := range out[k] {
			if rng.IntN(4) == 0 {
				out[k][i] = uint8(rng.IntN(256))
			}
		}
	}
	return out
}
