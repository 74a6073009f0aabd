package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/zk"
)

// Check is one verified fact of an audit.
type Check struct {
	What string
	OK   bool
	Info string
}

// Audit is what a third party can verify about one request from the ledger
// alone, offline once the entries are fetched.
type Audit struct {
	RequestID    string
	ModelID      string
	ReceiptIndex uint64
	Checks       []Check
	Accepted     bool // the client's recorded verdict, if any
	HasVerdict   bool
	// Checkpoint is the signed log head the inclusion proofs are against;
	// CheckpointKey signed it.
	Checkpoint    *ledgerv1.Checkpoint
	CheckpointKey []byte
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

// AuditRequest fetches a request's receipt, reveal, proof and verdict with
// their inclusion proofs and verifies them: each entry is in the log under
// a checkpoint signed by trustedKey (when nil, the checkpoint's own key,
// which the caller should compare with a key it trusts), the receipt is
// signed by the model's registered server key and countersigned by the
// client, the reveal opens the client's commitment, the Groth16 proof
// verifies against the registered key, commitment and the digest of the
// revealed challenges, and the verdict is the client's.
func AuditRequest(ctx context.Context, api ledger.API, requestID string, trustedKey ed25519.PublicKey) (*Audit, error) {
	a := &Audit{RequestID: requestID}
	rec, err := api.Request(ctx, requestID)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", requestID, err)
	}
	a.ModelID, a.ReceiptIndex = rec.GetModelId(), rec.GetReceiptIndex()
	mr, err := api.Model(ctx, rec.GetModelId(), true)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", rec.GetModelId(), err)
	}
	model := mr.GetModel()
	vkHash := sha256.Sum256(mr.GetVerifyingKey())
	vk, vkErr := zk.UnmarshalVerifyingKey(mr.GetVerifyingKey())
	if vkErr == nil && !bytes.Equal(vkHash[:], model.GetVerifyingKeyHash()) {
		vkErr = errors.New("verifying key does not match the registered hash")
	}
	a.add("registered verifying key", vkErr, fmt.Sprintf("sha256 %x", vkHash[:8]))

	entry := func(what string, index uint64) *signedTx {
		e, err := api.Entry(ctx, index)
		if err != nil {
			a.add(what+" in the log", err, "")
			return nil
		}
		key := trustedKey
		if key == nil && e.GetCheckpoint() != nil {
			key = e.GetCheckpoint().GetSignerKey()
		}
		if a.Checkpoint == nil {
			a.Checkpoint, a.CheckpointKey = e.GetCheckpoint(), key
		}
		if !a.add(what+" included in the log", ledger.VerifyInclusion(e, key), fmt.Sprintf("entry %d of %d", index, e.GetCheckpoint().GetSize())) {
			return nil
		}
		tx, err := decodeSigned(e.GetTx())
		if !a.add(what+" signature", err, "") {
			return nil
		}
		return tx
	}

	rtx := entry("receipt", rec.GetReceiptIndex())
	var rc *ledgerv1.InferenceReceipt
	if rtx != nil {
		rc = rtx.body.GetInferenceReceipt()
		var err error
		if rc == nil || rc.GetRequestId() != requestID {
			err = errors.New("entry is not this request's receipt")
		} else if !bytes.Equal(rtx.signer, model.GetServerKey()) {
			err = errors.New("receipt not signed by the model's server key")
		} else {
			d := ledger.ClientRequestDigest(rc.GetModelId(), rc.GetSessionId(), rc.GetRequestId(), rc.GetInputDigest(), rc.GetChallengeCommitment(), rc.GetNumBlocks())
			if !ed25519.Verify(rc.GetClientKey(), d[:], rc.GetClientSignature()) {
				err = errors.New("the client's countersignature does not verify")
			}
		}
		a.add("receipt by the registered server, countersigned by the client", err,
			fmt.Sprintf("model %s, input %x…, output %x…, %d blocks", rc.GetModelId(), rc.GetInputDigest()[:6], rc.GetOutputDigest()[:6], rc.GetNumBlocks()))
	}
	if rec.GetStatus() < ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
		a.add("challenges revealed", errors.New("not yet"), "")
		return a, nil
	}
	if vtx := entry("reveal", rec.GetRevealIndex()); vtx != nil && rc != nil {
		rv := vtx.body.GetChallengeReveal()
		var err error
		if rv == nil {
			err = errors.New("entry is not a reveal")
		} else if !bytes.Equal(vtx.signer, rc.GetClientKey()) {
			err = errors.New("reveal not signed by the client")
		} else if c := ledger.ChallengeCommitment(rv.GetChallenges(), rv.GetPositions(), rv.GetSalt()); !bytes.Equal(c[:], rc.GetChallengeCommitment()) {
			err = errors.New("the revealed challenges do not open the commitment")
		}
		a.add("reveal opens the client's commitment", err, fmt.Sprintf("%d challenges", len(rv.GetChallenges())))
	}
	if rec.GetStatus() < ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN {
		a.add("challenges proven", errors.New("no proof recorded yet"), "")
		return a, nil
	}
	if ptx := entry("proof", rec.GetProofIndex()); ptx != nil && vk != nil {
		cp := ptx.body.GetChallengeProof()
		err := verifyProof(ctx, api, model, vk, cp)
		a.add("Groth16 proof of the committed model's outputs", err, fmt.Sprintf("covers %d request(s)", len(cp.GetRequestIds())))
	}
	if !rec.GetHasVerdict() {
		a.add("client verdict", errors.New("no verdict recorded"), "")
		return a, nil
	}
	if vt := entry("verdict", rec.GetVerdictIndex()); vt != nil && rc != nil {
		vd := vt.body.GetVerdict()
		var err error
		if vd == nil || vd.GetRequestId() != requestID {
			err = errors.New("entry is not this request's verdict")
		} else if !bytes.Equal(vt.signer, rc.GetClientKey()) {
			err = errors.New("verdict not signed by the client")
		}
		if err == nil {
			a.HasVerdict, a.Accepted = true, vd.GetAccept()
		}
		a.add("verdict signed by the client", err, fmt.Sprintf("accept=%v: %s", vd.GetAccept(), vd.GetReason()))
	}
	return a, nil
}
