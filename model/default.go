package model

import (
	"bytes"
	_ "embed"
	"fmt"
)

// defaultModelJSON is the committed default model, trained by
// `veil train --out model/default_model.json` (see README).
//
//go:embed default_model.json
var defaultModelJSON []byte

// DefaultName is the name of the default model.
const DefaultName = "mnist-sq-32x128"

// Default returns the committed default model. It is parsed (and its
// checksum verified) on every call, so callers get their own copy.
func Default() (*File, error) {
	f, err := Decode(bytes.NewReader(defaultModelJSON))
	if err != nil {
		return nil, fmt.Errorf("default model: %w", err)
	}
	return f, nil
}

// LoadOrDefault reads the model file at path, or the committed default
// model when path is empty.
func LoadOrDefault(path string) (*File, error) {
	if path == "" {
		return Default()
	}
	return Load(path)
}
