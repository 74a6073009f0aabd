package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// Check is one verified fact of an audit.
type Check struct {
	What string
	OK   bool
	Info string
}

// Audit is what a third party can verify about one request from the ledger
// alone: every fact below is checked against entries whose inclusion in a
// log head vouched for by the auditor's anchor (a node key it trusts, or a
// quorum of the chain's validators) is verified.
type Audit struct {
	RequestKey   []byte
	RequestID    string
	ModelID      string
	ReceiptIndex uint64
	Checks       []Check
	Accepted     bool // the client's recorded verdict, if any
	HasVerdict   bool
	Reason       ledgerv1.VerdictReason
	// Head is the verified log head the checks are against.
	Head *ledgerv1.Checkpoint
}

// OK tells whether every check passed.
func (a *Audit) OK() bool {
	for _, c := range a.Checks {
		if !c.OK {
			return false
		}
	}
	return len(a.Checks) > 0
}

func (a *Audit) add(what string, err error, info string) bool {
	c := Check{What: what, OK: err == nil, Info: info}
	if err != nil {
		c.Info = err.Error()
	}
	a.Checks = append(a.Checks, c)
	return err == nil
}

// AuditRequest verifies a request from the ledger: the model's
// registration (spec, key for the spec's circuit), the receipt signed by
// the registered server key and countersigned by the client, the reveal
// opening the client's commitment, the Groth16 proof of the committed
// model's outputs on the revealed challenges of every request it covers,
// and the client's verdict.
func AuditRequest(ctx context.Context, r *trust.Reader, key []byte, pin Pin) (*Audit, error) {
	a := &Audit{RequestKey: key}
	rec, err := r.API.Request(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("request %x: %w", key, err)
	}
	a.RequestID, a.ModelID, a.ReceiptIndex = rec.GetRequestId(), rec.GetModelId(), rec.GetReceiptIndex()
	head, err := r.Head(ctx)
	if !a.add("log head vouched for by the anchor", err, fmt.Sprintf("%d entries at height %d", head.GetSize(), head.GetHeight())) {
		return a, nil
	}
	a.Head = head
	entry := func(ctx context.Context, index uint64) (*ledger.Tx, error) { return r.Entry(ctx, head, index) }
	reg, err := ReadRegistration(ctx, r, head, rec.GetModelId(), pin)
	if !a.add("registration: spec, and a verifying key for the spec's circuit", err, "") {
		return a, nil
	}
	keyFrom := "key from the owner's own setup (INSECURE: whoever ran it could forge proofs)"
	if reg.Ceremony != "" {
		keyFrom = fmt.Sprintf("key derived by the ledger's nodes from sealed ceremony %q", reg.Ceremony)
	}
	a.Checks[len(a.Checks)-1].Info = fmt.Sprintf("entry %d, commitment %s…, circuit %x…, %s", reg.Index, reg.Commitment.String()[:16], reg.VK.ModelID[:8], keyFrom)

	rtx, err := entry(ctx, rec.GetReceiptIndex())
	var rc *ledgerv1.InferenceReceipt
	if err == nil {
		rc = rtx.Body.GetInferenceReceipt()
		switch {
		case rc == nil:
			err = errors.New("entry is not a receipt")
		case rc.GetModelId() != reg.ModelID:
			err = fmt.Errorf("the receipt is for model %q, not %q", rc.GetModelId(), reg.ModelID)
		case !bytes.Equal(rtx.Signer, reg.ServerKey):
			err = errors.New("receipt not signed by the model's registered server key")
		case ledger.RequestKey(rc.GetModelId(), rc.GetClientKey(), rc.GetRequestId()) != [32]byte(key):
			err = errors.New("the receipt is for another request key")
		}
	}
	if !a.add("receipt by the registered server, countersigned by the client", err, "") {
		return a, nil
	}
	a.Checks[len(a.Checks)-1].Info = fmt.Sprintf("entry %d: input %x…, output %x…, %d blocks", rec.GetReceiptIndex(), rc.GetInputDigest()[:6], rc.GetOutputDigest()[:6], rc.GetNumBlocks())
	// Where the reveal, proof and verdict are is read from the verified
	// log itself, not from the node's summary of the request: a node
	// cannot hide them.
	found, err := scanRequest(ctx, head, rec.GetReceiptIndex(), key, reg, entry)
	if !a.add("the request's later entries, read from the verified log", err, "") {
		return a, nil
	}
	a.Checks[len(a.Checks)-1].Info = fmt.Sprintf("entries %d..%d: reveal %s, proof %s, verdict %s", rec.GetReceiptIndex()+1, head.GetSize()-1, at(found.reveal), at(found.proof), at(found.verdict))
	if found.reveal == 0 {
		a.add("challenges revealed", errors.New("no reveal in the log"), "")
		return a, nil
	}
	vtx, err := entry(ctx, found.reveal)
	var rv *ledgerv1.ChallengeReveal
	if err == nil {
		rv = vtx.Body.GetChallengeReveal()
		if rv == nil {
			err = errors.New("entry is not a reveal")
		} else if !bytes.Equal(vtx.Signer, rc.GetClientKey()) {
			err = errors.New("reveal not signed by the client")
		} else if c := ledger.ChallengeCommitment(rv.GetChallenges(), rv.GetPositions(), rv.GetSalt()); !bytes.Equal(c[:], rc.GetChallengeCommitment()) {
			err = errors.New("the revealed challenges do not open the commitment")
		}
	}
	if !a.add("reveal opens the client's commitment", err, fmt.Sprintf("%d challenges", len(rv.GetChallenges()))) {
		return a, nil
	}
	if found.proof != 0 {
		err := auditProof(ctx, r, reg, found.proof, key, entry)
		a.add("Groth16 proof of the committed model's outputs on the revealed challenges", err, fmt.Sprintf("entry %d", found.proof))
	} else {
		a.add("challenges proven", errors.New("no proof in the log"), "")
	}
	if found.verdict == 0 {
		a.add("client verdict", errors.New("no verdict in the log"), "")
		return a, nil
	}
	vt, err := entry(ctx, found.verdict)
	if err == nil {
		vd := vt.Body.GetVerdict()
		switch {
		case vd == nil || vd.GetRequestId() != rc.GetRequestId() || vd.GetModelId() != rc.GetModelId():
			err = errors.New("entry is not this request's verdict")
		case !bytes.Equal(vt.Signer, rc.GetClientKey()):
			err = errors.New("verdict not signed by the client")
		default:
			a.HasVerdict, a.Accepted, a.Reason = true, vd.GetAccept(), vd.GetReason()
		}
	}
	a.add("verdict signed by the client", err, fmt.Sprintf("accept=%v (%s)", a.Accepted, a.Reason))
	return a, nil
}

// auditProof re-verifies a proof entry from the verified log: it covers
// key, and proves the registered model's outputs on the revealed
// challenges of every request it lists.
func auditProof(ctx context.Context, r *trust.Reader, reg *Registration, index uint64, key []byte, entry func(context.Context, uint64) (*ledger.Tx, error)) error {
	tx, err := entry(ctx, index)
	if err != nil {
		return err
	}
	cp := tx.Body.GetChallengeProof()
	if cp == nil || cp.GetModelId() != reg.ModelID || !bytes.Equal(tx.Signer, reg.ServerKey) {
		return fmt.Errorf("entry %d is not a proof of %s by its server key", index, reg.ModelID)
	}
	covered := false
	var images []pixels.Image
	for _, k := range cp.GetRequestKeys() {
		covered = covered || bytes.Equal(k, key)
		imgs, err := revealedChallenges(ctx, r, reg.ModelID, k, entry)
		if err != nil {
			return err
		}
		images = append(images, imgs...)
	}
	if !covered {
		return errors.New("the proof does not cover this request")
	}
	st, err := statementOf(reg, cp, images)
	if err != nil {
		return err
	}
	return zk.Verify(reg.VK, st, cp.GetProof())
}

// requestEntries are the log indices of a request's reveal, proof and
// verdict (0: none).
type requestEntries struct{ reveal, proof, verdict uint64 }

func at(i uint64) string {
	if i == 0 {
		return "none"
	}
	return fmt.Sprintf("#%d", i)
}

// scanRequest reads every verified entry after the receipt and finds the
// request's reveal, the proof that covers it and its verdict.
func scanRequest(ctx context.Context, head *ledgerv1.Checkpoint, receipt uint64, key []byte, reg *Registration, entry func(context.Context, uint64) (*ledger.Tx, error)) (requestEntries, error) {
	var f requestEntries
	is := func(model string, signer []byte, id string) bool {
		k := ledger.RequestKey(model, signer, id)
		return bytes.Equal(k[:], key)
	}
	for i := receipt + 1; i < head.GetSize(); i++ {
		tx, err := entry(ctx, i)
		if err != nil {
			return f, err
		}
		switch b := tx.Body.Tx.(type) {
		case *ledgerv1.TxBody_ChallengeReveal:
			if f.reveal == 0 && is(b.ChallengeReveal.GetModelId(), tx.Signer, b.ChallengeReveal.GetRequestId()) {
				f.reveal = i
			}
		case *ledgerv1.TxBody_ChallengeProof:
			if f.proof == 0 && b.ChallengeProof.GetModelId() == reg.ModelID {
				for _, k := range b.ChallengeProof.GetRequestKeys() {
					if bytes.Equal(k, key) {
						f.proof = i
					}
				}
			}
		case *ledgerv1.TxBody_Verdict:
			if f.verdict == 0 && is(b.Verdict.GetModelId(), tx.Signer, b.Verdict.GetRequestId()) {
				f.verdict = i
			}
		}
	}
	return f, nil
}

// RequestKeyAt is the ledger key of the request whose receipt is log entry
// index, read under the reader's current head.
func RequestKeyAt(ctx context.Context, r *trust.Reader, index uint64) ([]byte, error) {
	head, err := r.Head(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := r.Entry(ctx, head, index)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", index, err)
	}
	rc := tx.Body.GetInferenceReceipt()
	if rc == nil {
		return nil, fmt.Errorf("entry %d is not an inference receipt", index)
	}
	k := ledger.RequestKey(rc.GetModelId(), rc.GetClientKey(), rc.GetRequestId())
	return k[:], nil
}
