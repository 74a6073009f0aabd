package zkverify

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// Verifier implements ledger.ProofVerifier with zk. It keeps decoded
// verifying keys (decoding checks curve points, which costs more than a
// verification) keyed by the SHA-256 of their encoding.
type Verifier struct {
	mu  sync.Mutex
	vks map[[32]byte]*zk.VerifyingKey
}

var _ ledger.ProofVerifier = (*Verifier)(nil)

// New returns a verifier.
func New() *Verifier { return &Verifier{vks: make(map[[32]byte]*zk.VerifyingKey)} }

// ChallengeDigest implements ledger.ProofVerifier.
func (v *Verifier) ChallengeDigest(images [][]byte) ([]byte, error) {
	imgs := make([]pixels.Image, len(images))
	for i, b := range images {
		img, err := pixels.FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("challenge %d: %w", i, err)
		}
		imgs[i] = img
	}
	d := zk.ChallengeDigest(imgs)
	return d[:], nil
}

func (v *Verifier) key(b []byte) (*zk.VerifyingKey, error) {
	h := sha256.Sum256(b)
	v.mu.Lock()
	vk, ok := v.vks[h]
	v.mu.Unlock()
	if ok {
		return vk, nil
	}
	vk, err := zk.UnmarshalVerifyingKey(b)
	if err != nil {
		return nil, fmt.Errorf("registered verifying key: %w", err)
	}
	v.mu.Lock()
	if len(v.vks) >= 256 {
		clear(v.vks) // bounded; models are few
	}
	v.vks[h] = vk
	v.mu.Unlock()
	return vk, nil
}

// VerifyChallengeProof implements ledger.ProofVerifier.
func (v *Verifier) VerifyChallengeProof(vkBytes []byte, st ledger.Statement, proof []byte) error {
	vk, err := v.key(vkBytes)
	if err != nil {
		return err
	}
	if len(st.Commitment) != 32 || len(st.ChallengeDigest) != 32 {
		return fmt.Errorf("commitment and challenge digest must be 32 bytes")
	}
	var zs zk.Statement
	copy(zs.Commitment[:], st.Commitment)
	copy(zs.Digest[:], st.ChallengeDigest)
	zs.Outputs = st.Outputs
	return zk.Verify(vk, zs, proof)
}

// CheckModel implements ledger.ProofVerifier: the spec must be a canonical
// circuits.Spec and the key must decode and claim that spec's circuit
// (zk.CheckKeyForSpec says what this does and does not prove).
func (v *Verifier) CheckModel(spec, vkBytes []byte, batch int) (ledger.ModelSpec, error) {
	s, err := circuits.ParseSpec(spec)
	if err != nil {
		return ledger.ModelSpec{}, err
	}
	vk, err := v.key(vkBytes)
	if err != nil {
		return ledger.ModelSpec{}, err
	}
	if err := zk.CheckKeyForSpec(vk, s, batch); err != nil {
		return ledger.ModelSpec{}, err
	}
	return ledger.ModelSpec{ID: s.ID(), Classes: s.Classes, OutputFrac: s.OutputFrac(), Tolerance: s.Tolerance}, nil
}
