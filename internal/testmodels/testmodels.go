// Package testmodels makes small real models for tests: trained on a slice
// of MNIST in a second or two, so that protocol tests can run a real
// zk-SNARK setup at a size 2 cores handle in seconds.
package testmodels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/pixels"
)

var small = sync.OnceValues(func() (*model.Model, error) {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	test, err := dataset.LoadTest(dir)
	if err != nil {
		return nil, err
	}
	set := &dataset.Set{Images: test.Images[5000:8000], Labels: test.Labels[5000:8000]}
	f, err := training.Train(context.Background(), set, training.Config{
		Arch:   model.Architecture{{Kind: model.KindDense, Out: 8}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}},
		Epochs: 4, BatchSize: 50, LearningRate: 3e-3, Seed: 3, Augment: false,
	})
	if err != nil {
		return nil, err
	}
	cal := make([][]uint8, 500)
	for i := range cal {
		cal[i] = set.Images[i][:]
	}
	m, err := model.Quantize(f, "small-8", model.QuantizeOptions{WeightBits: 8, ActivationBits: 12, Calibration: cal})
	if err != nil {
		return nil, fmt.Errorf("small model: %w", err)
	}
	return m, nil
})

// Small returns 784 -> 8 -> square -> 10, trained on 3,000 MNIST test
// images (indices 5000-7999) for 4 epochs: about 85% accurate, enough for
// tests that compare encrypted, fixed-point and proven outputs.
func Small() (*model.Model, error) {
	m, err := small()
	if err != nil {
		return nil, err
	}
	// Callers may not modify the shared model.
	c := *m
	c.Layers = append([]model.Layer(nil), m.Layers...)
	return &c, nil
}

// Tiny is 784 -dense-> 4 -square-> -dense-> 10 with random 8-bit weights
// drawn from seed: the default model's layer kinds at a size whose circuit
// tests solve, and whose Groth16 setup runs, in seconds. Its scores are not
// meaningful and can be large: use Small for encrypted evaluation.
func Tiny(seed uint64) *model.Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := &model.Model{
		Name:    "tiny",
		Classes: 10,
		Layers: []model.Layer{
			model.RandomWeights(rng, model.Layer{In: pixels.Count, Out: 4, WeightFrac: 7, BiasBits: 17, Shift: 7}),
			{Kind: model.KindSquare, In: 4, Out: 4, Shift: 16},
			model.RandomWeights(rng, model.Layer{In: 4, Out: 10, WeightFrac: 7, BiasBits: 13, Shift: 0}),
		},
	}
	if err := m.Validate(); err != nil {
		panic(err) // the sizes above are fixed and valid
	}
	return m
}

// Perturbed returns a copy of m whose last layer has every third weight
// moved by delta (clamped to the weight range): "another model" of the same
// shape, for tests of servers that do not run the committed model.
func Perturbed(m *model.Model, delta int32) *model.Model {
	c := *m
	c.Name = m.Name + "-perturbed"
	c.Layers = append([]model.Layer(nil), m.Layers...)
	last := &c.Layers[len(c.Layers)-1]
	last.W = append([]int32(nil), last.W...)
	lim := int32(1)<<(last.WeightBits-1) - 1
	for i := range last.W {
		if i%3 == 0 {
			last.W[i] = max(-lim, min(lim, last.W[i]+delta))
		}
	}
	return &c
}

// Poly is a small general network, 784 -dense-> 6 -relu2-> -dense-> 5
// -relu2-> -dense-> 10, with random weights and the ReLU fits of
// model.RandomFloat, quantised on random images: polynomial activations
// at a size whose circuit and Groth16 setup run in seconds.
func Poly(seed uint64) (*model.Model, error) {
	arch, err := model.ParseArchitecture("6,relu2,5,relu2,10")
	if err != nil {
		return nil, err
	}
	f, err := model.RandomFloat(rand.New(rand.NewPCG(seed, 5)), arch)
	if err != nil {
		return nil, err
	}
	cal := make([][]uint8, 0, 8)
	for _, img := range dataset.RandomImages(seed+100, 8) {
		cal = append(cal, img[:])
	}
	m, err := model.Quantize(f, "poly-tiny", model.QuantizeOptions{WeightBits: 8, ActivationBits: 10, Calibration: cal})
	if err != nil {
		return nil, fmt.Errorf("poly model: %w", err)
	}
	return m, nil
}
