package ledger

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// RejectionLog keeps the most recent rejections a node saw. It is node
// local and not consensus state: the ledger logs only accepted
// transactions, but an operator (and the web page) wants to see, say, a
// proof that failed verification.
type RejectionLog struct {
	mu   sync.Mutex
	max  int
	ring []*ledgerv1.Rejected
	next int
}

// NewRejectionLog keeps up to max rejections (default 200).
func NewRejectionLog(max int) *RejectionLog {
	if max <= 0 {
		max = 200
	}
	return &RejectionLog{max: max}
}

// Add records that raw was rejected with code, at where ("submit",
// "block", "proposal").
func (l *RejectionLog) Add(raw []byte, code ledgerv1.Code, reason, where string) {
	h := TxHash(raw)
	kind, summary := Describe(raw)
	r := &ledgerv1.Rejected{TxHash: h[:], Kind: kind, Summary: summary, Code: code, Reason: reason, Where: where}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < l.max {
		l.ring = append(l.ring, r)
		return
	}
	l.ring[l.next] = r
	l.next = (l.next + 1) % l.max
}

// List returns the rejections, newest first.
func (l *RejectionLog) List() []*ledgerv1.Rejected {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*ledgerv1.Rejected, 0, len(l.ring))
	for i := len(l.ring) - 1; i >= 0; i-- {
		out = append(out, l.ring[(l.next+i)%len(l.ring)])
	}
	return out
}

// Describe names a transaction's type and summarises it, for display. It
// checks nothing (no signature, no chain id).
func Describe(raw []byte) (kind, summary string) {
	var stx ledgerv1.SignedTx
	var b ledgerv1.TxBody
	if proto.Unmarshal(raw, &stx) != nil || proto.Unmarshal(stx.Body, &b) != nil || b.Tx == nil {
		return "unknown", fmt.Sprintf("%d bytes that do not decode as a transaction", len(raw))
	}
	switch t := b.Tx.(type) {
	case *ledgerv1.TxBody_RegisterModel:
		return "RegisterModel", fmt.Sprintf("model %s, commitment %x", trunc(t.RegisterModel.ModelId), t.RegisterModel.Commitment)
	case *ledgerv1.TxBody_SetupContribution:
		c := t.SetupContribution
		return "SetupContribution", fmt.Sprintf("ceremony %s phase %d contribution %d: %x", trunc(c.CeremonyId), c.Phase, c.Index, c.ContributionHash)
	case *ledgerv1.TxBody_InferenceReceipt:
		r := t.InferenceReceipt
		return "InferenceReceipt", fmt.Sprintf("request %s for model %s, %d blocks", trunc(r.RequestId), trunc(r.ModelId), r.NumBlocks)
	case *ledgerv1.TxBody_ChallengeReveal:
		r := t.ChallengeReveal
		return "ChallengeReveal", fmt.Sprintf("request %s, %d challenges", trunc(r.RequestId), len(r.Challenges))
	case *ledgerv1.TxBody_ChallengeProof:
		p := t.ChallengeProof
		var ids []string
		for i, k := range p.RequestKeys {
			if i == 8 {
				ids = append(ids, fmt.Sprintf("and %d more", len(p.RequestKeys)-8))
				break
			}
			ids = append(ids, fmt.Sprintf("%x", k[:min(6, len(k))]))
		}
		return "ChallengeProof", fmt.Sprintf("model %s, requests %s, %d outputs, %d-byte proof", trunc(p.ModelId), strings.Join(ids, ", "), len(p.Outputs), len(p.Proof))
	case *ledgerv1.TxBody_Verdict:
		v := t.Verdict
		return "Verdict", fmt.Sprintf("request %s of model %s: accept=%v (%s)", trunc(v.RequestId), trunc(v.ModelId), v.Accept, v.Reason)
	case *ledgerv1.TxBody_Transfer, *ledgerv1.TxBody_ProviderOffer, *ledgerv1.TxBody_Unbond, *ledgerv1.TxBody_Withdraw, *ledgerv1.TxBody_Dispute:
		return describeMarket(&b) // market.go
	}
	if kind, summary, ok := describeTraining(&b); ok {
		return kind, summary
	}
	if kind, summary, ok := describeCeremony(&b); ok {
		return kind, summary
	}
	return "unknown", ""
}
