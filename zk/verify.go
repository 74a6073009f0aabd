package zk

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
)

// Verify checks proof (a proof file, see ParseProof) against vk and st. It
// is safe for concurrent use. The error wraps one of the Err* values and
// says what differs.
//
// The public inputs are taken from st, never from the proof file: the
// file's copy of the statement only serves to give a precise reason when it
// differs.
func Verify(vk *VerifyingKey, st Statement, proof []byte) error {
	p, err := ParseProof(proof)
	if err != nil {
		return err
	}
	if p.CircuitVersion != vk.CircuitVersion || p.ModelID != vk.ModelID {
		return fmt.Errorf("%w: the proof is for circuit %x (version %d), the key for %x (version %d): another model architecture",
			ErrWrongKey, p.ModelID[:8], p.CircuitVersion, vk.ModelID[:8], vk.CircuitVersion)
	}
	if p.VKHash != vk.Hash() {
		return fmt.Errorf("%w: the proof was made with keys from another setup (verifying key %x, want %x)",
			ErrWrongKey, p.VKHash[:8], vk.hash[:8])
	}
	if p.Commitment != st.Commitment {
		return fmt.Errorf("%w: the proof is about model %x…, expected %x…", ErrWrongCommitment, p.Commitment[:8], st.Commitment[:8])
	}
	if p.Digest != st.Digest {
		return fmt.Errorf("%w: the proof is about challenges %x…, expected %x…", ErrWrongDigest, p.Digest[:8], st.Digest[:8])
	}
	if len(st.Outputs) != vk.Batch {
		return fmt.Errorf("%w: statement has %d challenges, the key proves %d", ErrPublicInputMismatch, len(st.Outputs), vk.Batch)
	}
	if len(p.Outputs) != vk.Batch {
		return fmt.Errorf("%w: proof has %d challenges, the key proves %d", ErrPublicInputMismatch, len(p.Outputs), vk.Batch)
	}
	for i := range st.Outputs {
		if len(st.Outputs[i]) != vk.Classes {
			return fmt.Errorf("%w: statement output row %d has %d values, want %d", ErrPublicInputMismatch, i, len(st.Outputs[i]), vk.Classes)
		}
		for j := range st.Outputs[i] {
			if st.Outputs[i][j] != p.Outputs[i][j] {
				return fmt.Errorf("%w: output %d of challenge %d is %d in the proof, %d in the statement",
					ErrPublicInputMismatch, j, i, p.Outputs[i][j], st.Outputs[i][j])
			}
		}
	}
	g, err := decodeGroth16(p.Groth16)
	if err != nil {
		return err
	}
	w, err := publicWitness(st, vk.Classes)
	if err != nil {
		return err
	}
	if err := groth16.Verify(g, vk.vk, w); err != nil {
		return fmt.Errorf("%w: %v", ErrPairingFailed, err)
	}
	return nil
}

// publicWitness lays out the public inputs in the circuit's schema order
// (Commitment, Digest, then Outputs row by row). It fills the witness
// directly rather than through frontend.NewWitness, which is slower and
// logs warnings about the unset secret fields.
func publicWitness(st Statement, classes int) (witness.Witness, error) {
	n := 2 + len(st.Outputs)*classes
	vals := make(chan any, n)
	var e fr.Element
	if err := e.SetBytesCanonical(st.Commitment[:]); err != nil {
		return nil, fmt.Errorf("%w: commitment is not a canonical field element", ErrPublicInputMismatch)
	}
	vals <- e
	if err := e.SetBytesCanonical(st.Digest[:]); err != nil {
		return nil, fmt.Errorf("%w: digest is not a canonical field element", ErrPublicInputMismatch)
	}
	vals <- e
	for _, row := range st.Outputs {
		if len(row) != classes {
			return nil, fmt.Errorf("%w: output row of %d values, want %d", ErrPublicInputMismatch, len(row), classes)
		}
		for _, v := range row {
			e.SetInt64(v)
			vals <- e
		}
	}
	close(vals)
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	if err := w.Fill(n, 0, vals); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicInputMismatch, err)
	}
	return w, nil
}

// VerifyBatch verifies many proofs against one key on all cores and
// returns one error (or nil) per proof. Groth16 verification is about one
// millisecond per proof here, dominated by the pairing product, so two
// cores verify well over 300 proofs a second.
func VerifyBatch(vk *VerifyingKey, sts []Statement, proofs [][]byte) []error {
	errs := make([]error, len(proofs))
	if len(sts) != len(proofs) {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: %d statements for %d proofs", ErrPublicInputMismatch, len(sts), len(proofs))
		}
		return errs
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = Verify(vk, sts[i], proofs[i])
			}
		}()
	}
	for i := range proofs {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}
