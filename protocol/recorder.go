package protocol

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/server"
)

// Recorder is the model owner's side of step 3 (docs/protocol.md): it
// checks a verifiable request before the evaluation and records a signed
// receipt of it on the ledger after. It implements server.Recorder.
type Recorder struct {
	Ledger ledger.API
	Signer ledger.Signer // the models' server key, on the ledger's chain
	// Batch is, per model id, the challenges one proof covers: a request
	// with more cannot be proven and is refused before it is evaluated.
	Batch map[string]int
	// Sync waits until the receipt is committed before answering. By
	// default the receipt is submitted in the background, off the private
	// inference path: the response carries the signed receipt, and the
	// client waits for it on the ledger (or submits it itself) before it
	// reveals its challenges.
	Sync bool
	Log  *slog.Logger
	// Admission bounds the requests admitted to what the prover can prove
	// in time (shared with the Prover; nil admits everything).
	Admission *Admission
	// Prices are, per model id, the price of the model's offer: a request
	// must agree to pay exactly it (0 or absent: a model without an offer).
	Prices map[string]uint64

	wg sync.WaitGroup
}

var _ server.Recorder = (*Recorder)(nil)

// Check implements server.Recorder: the request's fields, that the chain
// is this server's ledger, that one proof can cover its challenges, and the
// client's signature over exactly this request (chain, model, request id,
// key bundle, input ciphertext, commitment, blocks).
func (r *Recorder) Check(ctx context.Context, ev server.InferEvent) error {
	v := ev.Verifiable
	batch, ok := r.Batch[ev.ModelID]
	switch {
	case !ok:
		return fmt.Errorf("model %q is not registered for verifiable requests on this server", ev.ModelID)
	case v.GetChainId() != r.Signer.ChainID:
		return fmt.Errorf("the request is for ledger %q, this server records on %q", v.GetChainId(), r.Signer.ChainID)
	case v.GetRequestId() == "" || len(v.GetRequestId()) > ledger.MaxIDLen:
		return fmt.Errorf("request id must have 1 to %d bytes", ledger.MaxIDLen)
	case len(v.GetChallengeCommitment()) != 32:
		return errors.New("challenge commitment must be 32 bytes")
	case len(v.GetClientKey()) != ed25519.PublicKeySize:
		return errors.New("client key must be an ed25519 public key")
	case v.GetNumBlocks() < 2:
		return errors.New("a verifiable request needs at least 2 blocks (one real, one challenge)")
	case int(v.GetNumBlocks())-1 > batch:
		return fmt.Errorf("%d blocks: one proof of model %q covers %d challenges, so at most %d blocks", v.GetNumBlocks(), ev.ModelID, batch, batch+1)
	}
	in := sha256.Sum256(ev.Input)
	d := ledger.ClientRequestDigest(r.Signer.ChainID, ev.ModelID, v.GetRequestId(), ev.KeysDigest[:], in[:], v.GetChallengeCommitment(), v.GetNumBlocks(), v.GetPrice())
	if !ed25519.Verify(v.GetClientKey(), d[:], v.GetClientSignature()) {
		return errors.New("the client's signature does not verify for this request, key bundle and input")
	}
	if err := r.checkPrice(ctx, ev.ModelID, v.GetClientKey(), v.GetPrice()); err != nil { // market.go
		return err
	}
	key := ledger.RequestKey(ev.ModelID, v.GetClientKey(), v.GetRequestId())
	return r.Admission.admit(key[:], v.GetClientKey(), int(v.GetNumBlocks())-1, batch)
}

// Record implements server.Recorder.
func (r *Recorder) Record(ctx context.Context, ev server.InferEvent) (*server.Receipt, error) {
	v := ev.Verifiable
	in, out := sha256.Sum256(ev.Input), sha256.Sum256(ev.Output)
	tx, err := r.Signer.Receipt(&ledgerv1.InferenceReceipt{
		ModelId: ev.ModelID, RequestId: v.GetRequestId(), KeysDigest: ev.KeysDigest[:],
		InputDigest: in[:], OutputDigest: out[:], ChallengeCommitment: v.GetChallengeCommitment(),
		NumBlocks: v.GetNumBlocks(), ClientKey: v.GetClientKey(), ClientSignature: v.GetClientSignature(), Price: v.GetPrice(),
	})
	if err != nil {
		return nil, err
	}
	if r.Sync {
		idx, err := submitOnce(ctx, r.Ledger, tx)
		if err != nil {
			return nil, fmt.Errorf("submit receipt: %w", err)
		}
		return &server.Receipt{Tx: tx, Index: idx, Recorded: true}, nil
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := submitOnce(sctx, r.Ledger, tx); err != nil && r.Log != nil {
			r.Log.Warn("receipt not recorded", "request", v.GetRequestId(), "err", err)
		}
	}()
	return &server.Receipt{Tx: tx}, nil
}

// Wait waits for the receipts being submitted in the background.
func (r *Recorder) Wait() { r.wg.Wait() }
