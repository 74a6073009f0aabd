package zk

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/veil-project/veil/circuits"
)

// Compile builds the constraint system for spec and a batch size. Every
// party derives the same R1CS from the same public spec, which is what lets
// ledger nodes check a setup for it.
func Compile(spec *circuits.Spec, batch int) (*cs.R1CS, error) {
	if batch < 1 || batch > maxBatch {
		return nil, fmt.Errorf("compile: batch size %d out of range [1, %d]", batch, maxBatch)
	}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, circuits.NewCircuit(spec, batch))
	if err != nil {
		return nil, fmt.Errorf("compile circuit: %w", err)
	}
	return ccs.(*cs.R1CS), nil
}

// Domain is the FFT domain (a power of two) a constraint system needs.
func Domain(r *cs.R1CS) uint64 { return ecc.NextPowerOfTwo(uint64(r.GetNbConstraints())) }
