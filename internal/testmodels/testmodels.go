// Package testmodels makes small real models for tests: trained on a slice
// of MNIST in a second or two, so that protocol tests can run a real
// zk-SNARK setup at a size 2 cores handle in seconds.
package testmodels

import (
	"context"
	"fmt"
	"sync"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
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
	f, err := model.Train(context.Background(), set, model.TrainConfig{
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
