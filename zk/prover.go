package zk

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Prover proves statements about one committed model. A Prover is safe for
// sequential use; make one per goroutine for parallel proving (each proof
// already uses every core).
type Prover struct {
	m          *model.Model
	salt       Salt
	pk         *ProvingKey
	commitment Commitment
}

// NewProver checks that m matches pk's circuit and computes its commitment.
func NewProver(m *model.Model, salt Salt, pk *ProvingKey) (*Prover, error) {
	id, err := ModelIDOf(m)
	if err != nil {
		return nil, err
	}
	if id != pk.VK.ModelID {
		return nil, fmt.Errorf("prover: the keys are for circuit %x, the model needs %x (another architecture)", pk.VK.ModelID[:8], id[:8])
	}
	c, err := Commit(m, salt)
	if err != nil {
		return nil, err
	}
	return &Prover{m: m, salt: salt, pk: pk, commitment: c}, nil
}

// Commitment is the commitment the prover's proofs are about.
func (p *Prover) Commitment() Commitment { return p.commitment }

// Prove runs the model on images (exactly the key's batch size) and proves
// the outputs.
func (p *Prover) Prove(ctx context.Context, images []pixels.Image) (*Proof, error) {
	return p.prove(ctx, images, nil)
}

// ProveClaim proves that the model gives claimed on images. It fails,
// without producing a proof, unless claimed are exactly the committed
// model's outputs: it exists to show that a dishonest server cannot prove
// other outputs.
func (p *Prover) ProveClaim(ctx context.Context, images []pixels.Image, claimed [][]int64) (*Proof, error) {
	if claimed == nil {
		return nil, errors.New("prove: no claimed outputs")
	}
	return p.prove(ctx, images, claimed)
}

func (p *Prover) prove(ctx context.Context, images []pixels.Image, claimed [][]int64) (*Proof, error) {
	if len(images) != p.pk.Batch() {
		return nil, fmt.Errorf("prove: %d images, the keys prove batches of %d", len(images), p.pk.Batch())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	salt, err := p.salt.element()
	if err != nil {
		return nil, err
	}
	a, outs, err := circuits.Assign(p.pk.Spec, p.m, salt, images)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	if claimed != nil {
		if len(claimed) != len(outs) {
			return nil, fmt.Errorf("prove: %d claimed output rows for %d images", len(claimed), len(outs))
		}
		for i := range claimed {
			if len(claimed[i]) != len(outs[i]) {
				return nil, fmt.Errorf("prove: claimed row %d has %d values", i, len(claimed[i]))
			}
			for j, v := range claimed[i] {
				a.Outputs[i][j] = circuits.FieldOf(v)
			}
		}
		outs = claimed
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("prove: witness: %w", err)
	}
	proof, err := groth16.Prove(p.pk.ccs, p.pk.pk, w, backend.WithSolverOptions(solver.WithHints(circuits.Hints()...)))
	if err != nil {
		return nil, fmt.Errorf("prove: the witness does not satisfy the circuit (are the outputs the committed model's?): %w", err)
	}
	var buf bytes.Buffer
	if _, err := proof.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("prove: encode: %w", err)
	}
	return &Proof{
		CircuitVersion: CircuitVersion,
		ModelID:        p.pk.VK.ModelID,
		VKHash:         p.pk.VK.Hash(),
		Statement: Statement{
			Commitment: p.commitment,
			Digest:     ChallengeDigest(images),
			Outputs:    outs,
		},
		Groth16: buf.Bytes(),
	}, nil
}
