package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/consensys/gnark/logger"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// saltPath is the default salt file of a model: one per model checksum,
// under the data directory, readable by the owner only.
func (g *globalOptions) saltPath(f *model.File) (string, error) {
	d, err := g.ensureDataDir("salts")
	if err != nil {
		return "", err
	}
	return filepath.Join(d, f.Model.Name+"-"+f.SHA256[:16]+".salt"), nil
}

func (g *globalOptions) loadSalt(f *model.File, path string, create bool) (zk.Salt, string, error) {
	if path == "" {
		p, err := g.saltPath(f)
		if err != nil {
			return zk.Salt{}, "", err
		}
		path = p
	}
	if !create {
		s, err := zk.LoadSalt(path)
		return s, path, err
	}
	s, created, err := zk.LoadOrCreateSalt(path)
	if err == nil && created && !g.quiet {
		fmt.Fprintf(os.Stderr, "veil: created a new secret salt in %s (keep it: the commitment cannot be proven without it)\n", path)
	}
	return s, path, err
}

// quietGnark silences gnark's own logging (compile, solver, prover and
// verifier debug lines) for the zk commands: they have their own progress
// output.
func quietGnark() { logger.Disable() }

// specOfModel loads the model file at path (the default model when empty)
// and returns its circuit descriptor.
func specOfModel(path string) (*circuits.Spec, error) {
	f, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return circuits.SpecOf(f.Model)
}

// cachedKeys loads the model file at path (the default model when empty)
// and its cached keys for batch, without running a setup.
func (g *globalOptions) cachedKeys(ctx context.Context, path string, batch int) (*zk.ProvingKey, error) {
	f, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return g.keys(ctx, f.Model, batch, false)
}
