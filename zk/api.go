package zk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// CircuitVersion changes whenever the circuit or the proof encoding changes
// in a way that invalidates keys or proofs. It is part of the key cache key
// and of every proof file.
const CircuitVersion = 2

// Commitment is a model commitment: one BN254 scalar, big-endian.
type Commitment [32]byte

// Digest is a challenge digest: one BN254 scalar, big-endian.
type Digest [32]byte

// Salt is the model owner's secret blinding value (a BN254 scalar,
// big-endian). It makes the commitment hide the weights; keep it with the
// model and never publish it.
type Salt [32]byte

// ModelID identifies a circuit: the SHA-256 of the model's architecture
// descriptor (layer kinds, sizes, bit widths, shifts and accumulator
// bounds, see circuits.Spec). Models with the same ModelID share keys;
// their commitments differ.
type ModelID [32]byte

func (c Commitment) String() string { return hex.EncodeToString(c[:]) }
func (d Digest) String() string     { return hex.EncodeToString(d[:]) }
func (id ModelID) String() string   { return hex.EncodeToString(id[:]) }

// MarshalText encodes in hex (JSON output).
func (c Commitment) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalText encodes in hex (JSON output).
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MarshalText encodes in hex (JSON output).
func (id ModelID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// ParseCommitment parses 64 hex digits.
func ParseCommitment(s string) (Commitment, error) {
	var c Commitment
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return c, fmt.Errorf("commitment: want 64 hex digits")
	}
	copy(c[:], b)
	return c, nil
}

// Statement is what a proof proves: the model committed to by Commitment
// maps the challenge images hashed into Digest to Outputs (one row of
// model.Classes integer scores per image, at the model's fixed-point scale).
type Statement struct {
	Commitment Commitment `json:"commitment"`
	Digest     Digest     `json:"digest"`
	Outputs    [][]int64  `json:"outputs"`
}

// Errors returned by Verify, wrapped with details. Test them with errors.Is.
var (
	// ErrBadProofEncoding: the proof bytes do not parse.
	ErrBadProofEncoding = errors.New("bad proof encoding")
	// ErrWrongKey: the proof is for another circuit or was made with keys
	// from another setup.
	ErrWrongKey = errors.New("proof does not match the verifying key")
	// ErrWrongCommitment: the proof is about another model commitment.
	ErrWrongCommitment = errors.New("wrong model commitment")
	// ErrWrongDigest: the proof is about other challenge images.
	ErrWrongDigest = errors.New("challenge digest does not match")
	// ErrPublicInputMismatch: the proof claims other outputs, or another
	// batch size, than the statement.
	ErrPublicInputMismatch = errors.New("public input mismatch")
	// ErrPairingFailed: the Groth16 pairing check failed (a forged or
	// altered proof, or one made with keys from another setup).
	ErrPairingFailed = errors.New("pairing check failed")
)

// NewSalt draws a uniformly random salt.
func NewSalt() (Salt, error) {
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		return Salt{}, fmt.Errorf("salt: %w", err)
	}
	return Salt(e.Bytes()), nil
}

func (s Salt) element() (fr.Element, error) {
	var e fr.Element
	if err := e.SetBytesCanonical(s[:]); err != nil {
		return e, fmt.Errorf("salt is not a canonical field element: %w", err)
	}
	return e, nil
}

// LoadSalt reads a salt file (64 hex digits).
func LoadSalt(path string) (Salt, error) {
	var s Salt
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read salt: %w", err)
	}
	d, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(d) != 32 {
		return s, fmt.Errorf("salt file %s: want 64 hex digits", path)
	}
	copy(s[:], d)
	if _, err := s.element(); err != nil {
		return s, fmt.Errorf("salt file %s: %w", path, err)
	}
	return s, nil
}

// Save writes the salt readable by its owner only (mode 0600). It refuses
// to overwrite an existing file: losing a salt makes a commitment
// unprovable.
func (s Salt) Save(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("save salt: %w", err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(s[:])); err != nil {
		f.Close()
		return fmt.Errorf("save salt: %w", err)
	}
	return f.Close()
}

// LoadOrCreateSalt reads path, or creates it with a fresh salt.
func LoadOrCreateSalt(path string) (s Salt, created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		s, err := LoadSalt(path)
		return s, false, err
	}
	if s, err = NewSalt(); err != nil {
		return s, false, err
	}
	return s, true, s.Save(path)
}

// Commit returns the commitment to m under salt:
// Poseidon2-sponge(spec ID, salt, packed weights, packed biases).
func Commit(m *model.Model, salt Salt) (Commitment, error) {
	e, err := salt.element()
	if err != nil {
		return Commitment{}, err
	}
	c, err := circuits.Commit(m, e)
	if err != nil {
		return Commitment{}, fmt.Errorf("commit: %w", err)
	}
	return Commitment(c.Bytes()), nil
}

// ChallengeDigest hashes a batch of challenge images, in order.
func ChallengeDigest(images []pixels.Image) Digest {
	d := circuits.ChallengeDigest(images)
	return Digest(d.Bytes())
}

// ModelIDOf returns the circuit identifier of m's architecture.
func ModelIDOf(m *model.Model) (ModelID, error) {
	s, err := circuits.SpecOf(m)
	if err != nil {
		return ModelID{}, err
	}
	return ModelID(s.ID()), nil
}
