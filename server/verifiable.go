package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/zk"
)

// LedgerRecorder records the receipts of verifiable requests on a verifier
// ledger, signed with the server key registered with the model.
type LedgerRecorder struct {
	Ledger  ledger.API
	ChainID string
	Key     ed25519.PrivateKey
	// Sync waits until the receipt is committed before answering. By
	// default the receipt is submitted in the background, off the private
	// inference path: the response carries the signed receipt, and the
	// client waits for it on the ledger (or submits it itself) before it
	// reveals its challenges.
	Sync bool
	Log  *slog.Logger
	// Mangle, when set, may alter the receipt body before it is signed.
	// Only tests use it (a server that records a false output digest).
	Mangle func(*ledgerv1.InferenceReceipt)

	wg sync.WaitGroup
}

// Check implements Recorder: field sizes and the client's signature.
func (r *LedgerRecorder) Check(ctx context.Context, modelID, sessionID string, input []byte, v *inferencev1.VerifiableRequest) error {
	switch {
	case v.GetRequestId() == "" || len(v.GetRequestId()) > 128:
		return errors.New("request id must have 1 to 128 characters")
	case len(v.GetChallengeCommitment()) != 32:
		return errors.New("challenge commitment must be 32 bytes")
	case len(v.GetClientKey()) != ed25519.PublicKeySize:
		return errors.New("client key must be an ed25519 public key")
	case v.GetNumBlocks() < 2:
		return errors.New("a verifiable request needs at least 2 blocks (one real, one challenge)")
	}
	in := sha256.Sum256(input)
	d := ledger.ClientRequestDigest(modelID, sessionID, v.GetRequestId(), in[:], v.GetChallengeCommitment(), v.GetNumBlocks())
	if !ed25519.Verify(v.GetClientKey(), d[:], v.GetClientSignature()) {
		return errors.New("the client's signature does not verify")
	}
	return nil
}

// Record implements Recorder.
func (r *LedgerRecorder) Record(ctx context.Context, ev InferEvent) (*Receipt, error) {
	v := ev.Verifiable
	in, out := sha256.Sum256(ev.Input), sha256.Sum256(ev.Output)
	rc := &ledgerv1.InferenceReceipt{
		ModelId: ev.ModelID, SessionId: ev.SessionID, RequestId: v.GetRequestId(),
		InputDigest: in[:], OutputDigest: out[:], ChallengeCommitment: v.GetChallengeCommitment(),
		NumBlocks: v.GetNumBlocks(), ClientKey: v.GetClientKey(), ClientSignature: v.GetClientSignature(),
	}
	if r.Mangle != nil {
		r.Mangle(rc)
	}
	tx, err := ledger.SignTx(r.Key, &ledgerv1.TxBody{ChainId: r.ChainID, Tx: &ledgerv1.TxBody_InferenceReceipt{InferenceReceipt: rc}})
	if err != nil {
		return nil, err
	}
	if r.Sync {
		res, err := r.Ledger.Submit(ctx, tx)
		if err != nil {
			return nil, fmt.Errorf("submit receipt: %w", err)
		}
		return &Receipt{Tx: tx, Index: res.GetIndex(), Recorded: true}, nil
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := r.Ledger.Submit(sctx, tx); err != nil && r.Log != nil {
			r.Log.Warn("receipt not recorded", "request", v.GetRequestId(), "err", err)
		}
	}()
	return &Receipt{Tx: tx}, nil
}

// Wait waits for the receipts being submitted in the background.
func (r *LedgerRecorder) Wait() { r.wg.Wait() }

// ProofService answers revealed challenges: it watches the ledger for
// requests whose challenges have been revealed, proves the committed
// model's outputs on them with Groth16, and submits the proofs. A proof
// covers as many requests as fill the proving key's batch.
type ProofService struct {
	Ledger  ledger.API
	ChainID string
	Key     ed25519.PrivateKey
	Provers map[string]ModelProver // by model id
	Log     *slog.Logger
	// Tamper, when set, may alter a proof before it is submitted. Only
	// tests use it (a server that claims outputs it did not prove).
	Tamper func(*ledgerv1.ChallengeProof)
}

// Run proves revealed requests every poll interval until ctx is done.
func (p *ProofService) Run(ctx context.Context, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := p.ProveOnce(ctx); err != nil && ctx.Err() == nil && p.Log != nil {
			p.Log.Warn("proving failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ProveOnce proves every full batch of revealed requests and returns the
// number of proofs submitted.
func (p *ProofService) ProveOnce(ctx context.Context) (int, error) {
	n := 0
	ids := make([]string, 0, len(p.Provers))
	for id := range p.Provers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, modelID := range ids {
		prover := p.Provers[modelID]
		recs, err := p.Ledger.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: modelID, Limit: 1000})
		if err != nil {
			return n, fmt.Errorf("list requests: %w", err)
		}
		// Oldest first.
		var revealed []*ledgerv1.RequestRecord
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].GetStatus() == ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
				revealed = append(revealed, recs[i])
			}
		}
		batch := prover.Batch
		for len(revealed) > 0 {
			var take []*ledgerv1.RequestRecord
			var images []dataset.Image
			for _, r := range revealed {
				if len(images)+int(r.GetNumChallenges()) > batch {
					break
				}
				imgs, err := p.challenges(ctx, r)
				if err != nil {
					return n, err
				}
				take = append(take, r)
				images = append(images, imgs...)
			}
			if len(images) != batch {
				break // not enough revealed challenges for a full batch yet
			}
			revealed = revealed[len(take):]
			if err := p.prove(ctx, modelID, prover, take, images); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// challenges reads a request's revealed challenge images from the log.
func (p *ProofService) challenges(ctx context.Context, r *ledgerv1.RequestRecord) ([]dataset.Image, error) {
	e, err := p.Ledger.Entry(ctx, r.GetRevealIndex())
	if err != nil {
		return nil, fmt.Errorf("read reveal of %s: %w", r.GetRequestId(), err)
	}
	reveal, err := RevealOf(e.GetTx())
	if err != nil {
		return nil, fmt.Errorf("reveal of %s: %w", r.GetRequestId(), err)
	}
	return revealImages(reveal)
}

// RevealOf decodes a logged ChallengeReveal transaction.
func RevealOf(raw []byte) (*ledgerv1.ChallengeReveal, error) {
	var stx ledgerv1.SignedTx
	if err := proto.Unmarshal(raw, &stx); err != nil {
		return nil, err
	}
	var body ledgerv1.TxBody
	if err := proto.Unmarshal(stx.GetBody(), &body); err != nil {
		return nil, err
	}
	rv := body.GetChallengeReveal()
	if rv == nil {
		return nil, errors.New("not a challenge reveal")
	}
	return rv, nil
}

func revealImages(rv *ledgerv1.ChallengeReveal) ([]dataset.Image, error) {
	out := make([]dataset.Image, len(rv.GetChallenges()))
	for i, c := range rv.GetChallenges() {
		if len(c) != dataset.Pixels {
			return nil, fmt.Errorf("challenge %d has %d bytes", i, len(c))
		}
		copy(out[i][:], c)
	}
	return out, nil
}

func (p *ProofService) prove(ctx context.Context, modelID string, mp ModelProver, reqs []*ledgerv1.RequestRecord, images []dataset.Image) error {
	t0 := time.Now()
	proof, err := mp.Prover.Prove(ctx, images)
	if err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	pb, err := proof.MarshalBinary()
	if err != nil {
		return err
	}
	cp := &ledgerv1.ChallengeProof{ModelId: modelID, Proof: pb}
	for _, r := range reqs {
		cp.RequestIds = append(cp.RequestIds, r.GetRequestId())
	}
	for _, row := range proof.Outputs {
		cp.Outputs = append(cp.Outputs, row...)
	}
	if p.Tamper != nil {
		p.Tamper(cp)
	}
	tx, err := ledger.SignTx(p.Key, &ledgerv1.TxBody{ChainId: p.ChainID, Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: cp}})
	if err != nil {
		return err
	}
	res, err := p.Ledger.Submit(ctx, tx)
	if err != nil {
		return fmt.Errorf("submit proof for %v: %w", cp.RequestIds, err)
	}
	if p.Log != nil {
		p.Log.Info("proof recorded", "model", modelID, "requests", cp.RequestIds, "index", res.GetIndex(), "prove_ms", stats.Milliseconds(time.Since(t0)))
	}
	return nil
}

// ModelProver proves one committed model's outputs, Batch challenge
// images per proof.
type ModelProver struct {
	Prover *zk.Prover
	Batch  int
}
