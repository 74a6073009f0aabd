package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// randomModel is 784 -dense-> hidden -square-> -dense-> 10 with random 8-bit
// weights (|w| < 1/4): the layer kinds and sizes of a real network, with
// hidden values and scores of order 1 like the trained model's, for latency
// runs. Encrypted latency does not depend on the weights' values, only on
// the matrix shapes.
func randomModel(hidden int, seed uint64) (*model.Model, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(hidden)))
	dense := func(in, out, biasBits, shift int) model.Layer {
		l := model.Layer{Kind: model.KindDense, In: in, Out: out, WeightBits: 8, WeightFrac: 9, BiasBits: biasBits, Shift: shift}
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
	m := &model.Model{
		Name:        fmt.Sprintf("random-%d-%d-sq-10", pixels.Count, hidden),
		Description: "random 8-bit weights for latency benchmarks",
		Classes:     10,
		Layers: []model.Layer{
			dense(pixels.Count, hidden, 16, 8),
			{Kind: model.KindSquare, In: hidden, Out: hidden, Shift: 9},
			dense(hidden, 10, 16, 0),
		},
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("random model: %w", err)
	}
	return m, nil
}

// tinyModel is 784 -dense-> 4 -square-> -dense-> 10 with random weights
// (testmodels.Tiny): the default model's layer kinds in a circuit whose
// Groth16 setup takes seconds (the quick suite's proofs).
func tinyModel() (*model.Model, error) {
	m := testmodels.Tiny(7)
	m.Name = "tiny-784-4-sq-10"
	return m, nil
}

// affine is a dense map y = W·x + b with W rows×cols, row-major.
type affine struct {
	Rows int       `json:"rows"`
	Cols int       `json:"cols"`
	W    []float64 `json:"w"`
	B    []float64 `json:"b"`
}

// foldModel gives the two matrices the he package evaluates (he.Fold), in
// the JSON form the peer reads.
func foldModel(m *model.Model) (first, last affine, err error) {
	f, l, err := he.Fold(m)
	if err != nil {
		return first, last, fmt.Errorf("fold: %w", err)
	}
	return affine(f), affine(l), nil
}

// randomImages returns n deterministic MNIST-like images, for runs without
// the MNIST files.
func randomImages(n int) []pixels.Image { return testmodels.RandomImages(1, n) }
