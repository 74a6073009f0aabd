package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
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
	m := &model.Model{
		Name:        fmt.Sprintf("random-%d-%d-sq-10", pixels.Count, hidden),
		Description: "random 8-bit weights for latency benchmarks",
		Classes:     10,
		Layers: []model.Layer{
			model.RandomWeights(rng, model.Layer{In: pixels.Count, Out: hidden, WeightFrac: 9, BiasBits: 16, Shift: 8}),
			{Kind: model.KindSquare, In: hidden, Out: hidden, Shift: 9},
			model.RandomWeights(rng, model.Layer{In: hidden, Out: 10, WeightFrac: 9, BiasBits: 16, Shift: 0}),
		},
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("random model: %w", err)
	}
	return m, nil
}

// tinyModel is 784 -dense-> 4 -square-> -dense-> 10 with random weights
// (the same weights as the tests' testmodels.Tiny(7)): the default model's
// layer kinds in a circuit whose Groth16 setup takes seconds (the quick
// suite's proofs).
func tinyModel() (*model.Model, error) {
	rng := rand.New(rand.NewPCG(7, 1))
	m := &model.Model{
		Name:    fmt.Sprintf("tiny-%d-4-sq-10", pixels.Count),
		Classes: 10,
		Layers: []model.Layer{
			model.RandomWeights(rng, model.Layer{In: pixels.Count, Out: 4, WeightFrac: 7, BiasBits: 17, Shift: 7}),
			{Kind: model.KindSquare, In: 4, Out: 4, Shift: 16},
			model.RandomWeights(rng, model.Layer{In: 4, Out: 10, WeightFrac: 7, BiasBits: 13, Shift: 0}),
		},
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("tiny model: %w", err)
	}
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
func randomImages(n int) []pixels.Image { return dataset.RandomImages(1, n) }
