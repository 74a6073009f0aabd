package zk

import (
	"context"
	"errors"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// CircuitVersion changes whenever the circuit or the proof encoding changes
// in a way that invalidates keys or proofs. It is part of the key cache key
// and of every proof file.
const CircuitVersion = 1

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
// bounds). Models with the same ModelID share keys; their commitments differ.
type ModelID [32]byte

// Statement is what a proof proves: the model committed to by Commitment
// maps the challenge images hashed into Digest to Outputs (one row of
// model.Classes integer scores per image, at the model's fixed-point scale).
type Statement struct {
	Commitment Commitment
	Digest     Digest
	Outputs    [][]int64
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

// Commit returns the commitment to m under salt.
func Commit(m *model.Model, salt Salt) (Commitment, error) {
	return Commitment{}, errors.New("zk.Commit: not implemented yet")
}

// ChallengeDigest hashes a batch of challenge images, in order.
func ChallengeDigest(images []dataset.Image) Digest {
	return Digest{}
}

// VerifyingKey is a Groth16 verifying key together with the circuit it is
// for (ModelID, batch size, circuit version).
type VerifyingKey struct{}

// MarshalBinary encodes the key.
func (vk *VerifyingKey) MarshalBinary() ([]byte, error) {
	return nil, errors.New("not implemented yet")
}

// UnmarshalVerifyingKey decodes a key written by MarshalBinary.
func UnmarshalVerifyingKey(b []byte) (*VerifyingKey, error) {
	return nil, errors.New("not implemented yet")
}

// Hash is the SHA-256 of the encoded key: it names one setup.
func (vk *VerifyingKey) Hash() [32]byte { return [32]byte{} }

// Verify checks proof (a proof file, see ParseProof) against vk and st. It
// is safe for concurrent use. The error wraps one of the Err* values.
func Verify(vk *VerifyingKey, st Statement, proof []byte) error {
	return errors.New("zk.Verify: not implemented yet")
}

// ProvingKey is what a prover needs: the compiled circuit and the Groth16
// proving key, plus the matching verifying key.
type ProvingKey struct{}

// Prover proves statements about one committed model.
type Prover struct{}

// NewProver checks that m matches pk's circuit.
func NewProver(m *model.Model, salt Salt, pk *ProvingKey) (*Prover, error) {
	return nil, errors.New("zk.NewProver: not implemented yet")
}

// Prove runs the model on images (exactly pk's batch size) and proves the
// outputs.
func (p *Prover) Prove(ctx context.Context, images []dataset.Image) (*Proof, error) {
	return nil, errors.New("zk.Prove: not implemented yet")
}

// Proof is a self-describing proof file.
type Proof struct {
	Version uint16
	ModelID ModelID
	VKHash  [32]byte
	Statement
	Groth16 []byte
}
