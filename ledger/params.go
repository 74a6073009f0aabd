package ledger

import (
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Params are a chain's consensus parameters. They are fixed when the store
// is created (the genesis of an embedded node, or the app state of a
// CometBFT genesis) and every node of a chain must use the same ones:
// changing one changes which transactions are valid.
type Params struct {
	// ProofDeadlineBlocks is how long, in blocks, a server has to prove a
	// revealed request (and a client has to reveal a receipted one) before
	// a verdict may be recorded without a proof.
	ProofDeadlineBlocks uint64
}

// DefaultParams are the parameters of `veil ledger serve` and `veil ledger
// testnet`: about a minute at one block per second.
var DefaultParams = Params{ProofDeadlineBlocks: 60}

// MaxProofDeadlineBlocks bounds ProofDeadlineBlocks (so that height
// arithmetic can never overflow).
const MaxProofDeadlineBlocks = 1 << 32

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.ProofDeadlineBlocks == 0 || p.ProofDeadlineBlocks > MaxProofDeadlineBlocks {
		return fmt.Errorf("proof deadline of %d blocks: must be 1..%d", p.ProofDeadlineBlocks, uint64(MaxProofDeadlineBlocks))
	}
	return nil
}

// Proto returns the parameters as stored and served.
func (p Params) Proto() *ledgerv1.ChainParams {
	return &ledgerv1.ChainParams{ProofDeadlineBlocks: p.ProofDeadlineBlocks}
}

// ParamsFromProto is the inverse of Proto.
func ParamsFromProto(m *ledgerv1.ChainParams) (Params, error) {
	if m == nil {
		return Params{}, errors.New("no chain parameters")
	}
	p := Params{ProofDeadlineBlocks: m.GetProofDeadlineBlocks()}
	return p, p.Validate()
}
