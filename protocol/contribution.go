package protocol

import (
	"context"
	"fmt"
	"io"

	"github.com/veil-project/veil/ledger/trust"
)

// ContributionCheck is where a contribution is in a ledger ceremony's
// transcript, as CheckContribution verified it.
type ContributionCheck struct {
	Ceremony  string `json:"ceremony"`
	Position  int    `json:"position"`
	Index     uint64 `json:"log_index"`
	Sealed    bool   `json:"sealed"`
	SealIndex uint64 `json:"seal_index,omitempty"`
}

// CheckContribution verifies under the reader's current head that the
// accumulator whose hash is hash is in ceremony id's transcript
// (VerifyInTranscript).
func CheckContribution(ctx context.Context, r *trust.Reader, id string, hash []byte) (*ContributionCheck, error) {
	head, err := r.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger head: %w", err)
	}
	p, err := VerifyInTranscript(ctx, r, head, id, hash)
	if err != nil {
		return nil, err
	}
	return &ContributionCheck{Ceremony: id, Position: p.Position, Index: p.Index, Sealed: p.Sealed, SealIndex: p.SealIndex}, nil
}

// WriteText tells where the contribution is and what the seal adds.
func (r *ContributionCheck) WriteText(w io.Writer) error {
	state := "not sealed yet: every later contribution must extend yours (checked again once sealed)"
	if r.Sealed {
		state = fmt.Sprintf("sealed at log entry %d: every later accumulator, and so the final key, builds on yours", r.SealIndex)
	}
	_, err := fmt.Fprintf(w, "contribution %d of ceremony %s, log entry %d (verified under the anchor's head; its chunks hash to yours); %s\n", r.Position, r.Ceremony, r.Index, state)
	return err
}
