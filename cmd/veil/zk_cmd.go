package main

import (
	"context"

	"github.com/consensys/gnark/logger"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// quietGnark silences gnark's own logging (compile, solver, prover and
// verifier debug lines) for the zk commands: they have their own progress
// output.
func quietGnark() { logger.Disable() }

// specOfModel loads the model file at path (the default model when empty)
// and returns its circuit descriptor.
func specOfModel(path string) (*circuits.Spec, error) {
	f, err := model.LoadOrDefault(path)
	if err != nil {
		return nil, err
	}
	return circuits.SpecOf(f.Model)
}

// cachedKeys loads the model file at path (the default model when empty)
// and its cached keys for batch, without running a setup.
func (g *globalOptions) cachedKeys(ctx context.Context, path string, batch int) (*zk.ProvingKey, error) {
	f, err := model.LoadOrDefault(path)
	if err != nil {
		return nil, err
	}
	return g.store().Keys(ctx, f.Model, batch, false)
}
