package he

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Encrypt places images[b] in block b (a nil image leaves its block at
// zero) and encrypts them with the secret key. The result is in seeded form:
// its wire size is half a full ciphertext.
func (s *SecretKey) Encrypt(layout Layout, images [][]uint8) (*Ciphertext, error) {
	c := s.params
	if err := layout.Validate(c.lit); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if len(images) > layout.Blocks {
		return nil, fmt.Errorf("encrypt: %d images, a ciphertext holds %d blocks", len(images), layout.Blocks)
	}
	v := make([]float64, c.lit.Slots())
	for b, img := range images {
		if img == nil {
			continue
		}
		if len(img) != pixels.Count {
			return nil, fmt.Errorf("encrypt: image %d has %d pixels, want %d", b, len(img), pixels.Count)
		}
		base := b*layout.BlockSize + layout.InputOffset
		for p, px := range img {
			v[base+p] = float64(px) / (1 << model.InputFrac)
		}
	}
	return s.EncryptValues(v)
}

// Decrypt returns the scores of every block: out[b][r] is score r of block b,
// in real units (the fixed-point score times 2^-OutputFrac of the model).
func (s *SecretKey) Decrypt(layout Layout, ct *Ciphertext) ([][]float64, error) {
	c := s.params
	if err := layout.Validate(c.lit); err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if ct.params.Fingerprint() != c.Fingerprint() {
		return nil, fmt.Errorf("decrypt: ciphertext made for other parameters")
	}
	if ct.ct.Level() != 0 {
		return nil, fmt.Errorf("decrypt: result at level %d, want 0", ct.ct.Level())
	}
	pt := rlwe.NewDecryptor(c.cp, s.sk).DecryptNew(ct.ct)
	v := make([]float64, c.lit.Slots())
	if err := ckks.NewEncoder(c.cp).Decode(pt, v); err != nil {
		return nil, fmt.Errorf("decrypt: decode: %w", err)
	}
	out := make([][]float64, layout.Blocks)
	for b := range out {
		out[b] = append([]float64(nil), v[b*layout.BlockSize:b*layout.BlockSize+layout.Outputs]...)
	}
	return out, nil
}

// EncryptValues encrypts an arbitrary vector of real slot values (at most
// one per slot) with the secret key, at the input level and scale. Encrypt
// is what clients use; this is for callers that need slots Encrypt cannot
// express, such as tests of what a dispute accepts as a well-formed input.
func (s *SecretKey) EncryptValues(v []float64) (*Ciphertext, error) {
	c := s.params
	if len(v) > c.lit.Slots() {
		return nil, fmt.Errorf("encrypt: %d values, %d slots", len(v), c.lit.Slots())
	}
	pt := ckks.NewPlaintext(c.cp, c.MaxLevel())
	pt.Scale = c.inputScale()
	if err := ckks.NewEncoder(c.cp).Encode(v, pt); err != nil {
		return nil, fmt.Errorf("encrypt: encode: %w", err)
	}
	seed, err := newSeed()
	if err != nil {
		return nil, err
	}
	prng, err := sampling.NewKeyedPRNG(seed)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	ct := ckks.NewCiphertext(c.cp, 1, c.MaxLevel())
	if err := rlwe.NewEncryptor(c.cp, s.sk).WithPRNG(prng).Encrypt(pt, ct); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return &Ciphertext{params: c, ct: ct, seed: seed}, nil
}
