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

// compactModelJSON is the committed compact model, trained by
// `veil train --arch 20,80,sq,10 --out model/compact_model.json`.
//
//go:embed compact_model.json
var compactModelJSON []byte

// CompactName is the name of the compact model.
const CompactName = "mnist-20-80-sq-10"

// CompactArchitecture is the default architecture, narrower: a projection
// to 20 features, 80 units, the square activation, 10 outputs (18,190
// weights, against 30,634). Its circuit at a batch of 3 challenges has
// 61,364 constraints, so it fits the 2^16 FFT domain where the default
// model's (97,643) needs 2^17: a multi-party setup for it costs half as much
// (phase 1, and the group FFTs that open its phase 2), which is what lets
// `veil demo` run a real 3-party ceremony within its 5-minute first run.
var CompactArchitecture = Architecture{
	{Kind: KindDense, Out: 20},
	{Kind: KindDense, Out: 80},
	{Kind: KindSquare},
	{Kind: KindDense, Out: 10},
}

// Compact returns the committed compact model (parsed and checked on every
// call, as Default).
func Compact() (*File, error) {
	f, err := Decode(bytes.NewReader(compactModelJSON))
	if err != nil {
		return nil, fmt.Errorf("compact model: %w", err)
	}
	return f, nil
}

// Committed returns the committed model called name: "default" (or
// DefaultName) or "compact" (or CompactName).
func Committed(name string) (*File, error) {
	switch name {
	case "default", DefaultName:
		return Default()
	case "compact", CompactName:
		return Compact()
	}
	return nil, fmt.Errorf("no committed model %q (there are %q and %q)", name, "default", "compact")
}

// LoadOrDefault reads the model file at path, or the committed default
// model when path is empty.
func LoadOrDefault(path string) (*File, error) {
	if path == "" {
		return Default()
	}
	return Load(path)
}
