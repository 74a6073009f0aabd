package protocol

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// ChallengeProver proves a committed model's outputs on a batch of
// challenge images (zk.Prover; tests substitute dishonest ones).
type ChallengeProver interface {
	Prove(ctx context.Context, images []pixels.Image) (*zk.Proof, error)
}

// ModelProver proves one registered model, Batch challenge images per
// proof (the verifying key's batch).
type ModelProver struct {
	Prover ChallengeProver
	Batch  int
}

// Prover answers revealed challenges (step 5): it pages through the
// ledger's revealed, unproven requests of each model, packs their
// challenges into batches (padding a short batch as the ledger does),
// proves the committed model's outputs with Groth16 and submits the proofs.
// One request that cannot be proven never blocks the others.
type Prover struct {
	Ledger ledger.API
	Signer ledger.Signer // the models' server key
	Models map[string]ModelProver
	// Linger is how long a batch with room left waits for more revealed
	// challenges before it is proven anyway (0: prove at once). A longer
	// linger proves more requests per proof at the cost of latency.
	Linger time.Duration
	Log    *slog.Logger
	// Admission is told what was proven and how long proofs take (shared
	// with the Recorder).
	Admission *Admission

	mu     sync.Mutex
	seen   map[string]time.Time // request key -> when first seen revealed
	failed map[string]int       // request key -> proving failures
}

// maxAttempts is how often a request is tried before the prover gives up on
// it (its client then records a verdict after the deadline).
const maxAttempts = 3

// Run proves revealed requests every poll interval until ctx is done.
func (p *Prover) Run(ctx context.Context, poll time.Duration) error {
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

type pending struct {
	rec    *ledgerv1.RequestRecord
	images []pixels.Image
}

// ProveOnce proves what is revealed now and returns the number of proofs
// the ledger accepted. Errors of one batch are reported after the others
// have been tried.
func (p *Prover) ProveOnce(ctx context.Context) (int, error) {
	ids := make([]string, 0, len(p.Models))
	for id := range p.Models {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	n := 0
	var errs []error
	for _, modelID := range ids {
		k, err := p.proveModel(ctx, modelID, p.Models[modelID])
		n += k
		if err != nil {
			errs = append(errs, fmt.Errorf("model %s: %w", modelID, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return n, errors.Join(errs...)
}

// revealed lists a model's revealed, unproven requests, oldest reveal
// first, paging through all of them.
func (p *Prover) revealed(ctx context.Context, modelID string) ([]*ledgerv1.RequestRecord, error) {
	var all []*ledgerv1.RequestRecord
	q := &ledgerv1.ListRequestsRequest{ModelId: modelID, Status: ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED, Limit: 1000}
	for {
		page, err := p.Ledger.Requests(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list revealed requests: %w", err)
		}
		all = append(all, page...)
		if len(page) < int(q.Limit) {
			break
		}
		q.BeforeIndex = page[len(page)-1].GetRevealIndex()
	}
	// Earliest deadline first, then oldest reveal.
	slices.SortStableFunc(all, func(a, b *ledgerv1.RequestRecord) int {
		if d := cmp.Compare(a.GetProofDeadline(), b.GetProofDeadline()); d != 0 {
			return d
		}
		return cmp.Compare(a.GetRevealIndex(), b.GetRevealIndex())
	})
	return all, nil
}

func (p *Prover) proveModel(ctx context.Context, modelID string, mp ModelProver) (int, error) {
	recs, err := p.revealed(ctx, modelID)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	p.mu.Lock()
	if p.seen == nil {
		p.seen, p.failed = map[string]time.Time{}, map[string]int{}
	}
	// Forget what is no longer pending (proven, judged): the maps stay as
	// small as the backlog.
	live := make(map[string]bool, len(recs))
	for _, rec := range recs {
		live[hex.EncodeToString(rec.GetRequestKey())] = true
	}
	for k := range p.seen {
		if !live[k] {
			delete(p.seen, k)
			delete(p.failed, k)
		}
	}
	var queue []pending
	var errs []error
	for _, rec := range recs {
		key := hex.EncodeToString(rec.GetRequestKey())
		if len(rec.GetRequestKey()) != 32 {
			continue // not a record the ledger would hold
		}
		if _, ok := p.seen[key]; !ok {
			p.seen[key] = now
		}
		if p.failed[key] >= maxAttempts {
			continue
		}
		if int(rec.GetNumChallenges()) > mp.Batch {
			// The ledger refuses such receipts; an older ledger might not.
			p.failed[key] = maxAttempts
			errs = append(errs, fmt.Errorf("request %s has %d challenges, one proof covers %d: skipped", key[:12], rec.GetNumChallenges(), mp.Batch))
			continue
		}
		queue = append(queue, pending{rec: rec})
	}
	p.mu.Unlock()
	n := 0
	for len(queue) > 0 && ctx.Err() == nil {
		var batch []pending
		total := 0
		for len(queue) > 0 && total+int(queue[0].rec.GetNumChallenges()) <= mp.Batch {
			it := queue[0]
			queue = queue[1:]
			imgs, err := p.challenges(ctx, it.rec)
			if err != nil {
				p.fail(it.rec)
				errs = append(errs, err)
				continue
			}
			it.images = imgs
			batch = append(batch, it)
			total += len(imgs)
		}
		if len(batch) == 0 {
			continue
		}
		if total < mp.Batch && len(queue) == 0 && p.Linger > 0 && time.Since(p.firstSeen(batch[0].rec)) < p.Linger {
			break // room left and nothing more revealed: wait a little for more
		}
		if err := p.prove(ctx, modelID, mp, batch); err != nil {
			for _, it := range batch {
				p.fail(it.rec)
			}
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (p *Prover) firstSeen(rec *ledgerv1.RequestRecord) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[hex.EncodeToString(rec.GetRequestKey())]
}

func (p *Prover) fail(rec *ledgerv1.RequestRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed[hex.EncodeToString(rec.GetRequestKey())]++
}

// challenges reads a request's revealed challenge images from the log.
func (p *Prover) challenges(ctx context.Context, rec *ledgerv1.RequestRecord) ([]pixels.Image, error) {
	e, err := p.Ledger.Entry(ctx, rec.GetRevealIndex())
	if err != nil {
		return nil, fmt.Errorf("read reveal of %x: %w", rec.GetRequestKey()[:6], err)
	}
	tx, err := ledger.ParseTx(p.Signer.ChainID, e.GetTx())
	if err != nil {
		return nil, fmt.Errorf("reveal of %x: %w", rec.GetRequestKey()[:6], err)
	}
	rv := tx.Body.GetChallengeReveal()
	if rv == nil || len(rv.GetChallenges()) != int(rec.GetNumChallenges()) {
		return nil, fmt.Errorf("entry %d is not the reveal of request %x", rec.GetRevealIndex(), rec.GetRequestKey()[:6])
	}
	return imagesOf(rv.GetChallenges())
}

// imagesOf converts revealed challenge bytes (checked by the ledger's
// stateless rules to be one image each).
func imagesOf(raw [][]byte) ([]pixels.Image, error) {
	out := make([]pixels.Image, len(raw))
	for i, c := range raw {
		if len(c) != len(out[i]) {
			return nil, fmt.Errorf("challenge %d has %d bytes, want %d", i, len(c), len(out[i]))
		}
		copy(out[i][:], c)
	}
	return out, nil
}

// padImages pads a batch of challenges to the circuit's batch the way the
// ledger does (ledger.PadChallenges): by repeating the last image.
func padImages(images []pixels.Image, batch int) []pixels.Image {
	out := slices.Clone(images)
	for len(out) > 0 && len(out) < batch {
		out = append(out, out[len(out)-1])
	}
	return out
}

func (p *Prover) prove(ctx context.Context, modelID string, mp ModelProver, batch []pending) error {
	t0 := time.Now()
	var images []pixels.Image
	cp := &ledgerv1.ChallengeProof{ModelId: modelID}
	for _, it := range batch {
		images = append(images, it.images...)
		cp.RequestKeys = append(cp.RequestKeys, it.rec.GetRequestKey())
	}
	proof, err := mp.Prover.Prove(ctx, padImages(images, mp.Batch))
	if err != nil {
		return fmt.Errorf("prove: %w", err)
	}
	if cp.Proof, err = proof.MarshalBinary(); err != nil {
		return err
	}
	for _, row := range proof.Outputs {
		cp.Outputs = append(cp.Outputs, row...)
	}
	tx, err := p.Signer.Proof(cp)
	if err != nil {
		return err
	}
	p.Admission.proved(time.Since(t0))
	idx, err := submitOnce(ctx, p.Ledger, tx)
	if err != nil {
		return fmt.Errorf("submit proof of %d requests: %w", len(batch), err)
	}
	p.Admission.release(cp.RequestKeys...)
	if p.Log != nil {
		p.Log.Info("proof recorded", "model", modelID, "requests", len(batch), "challenges", len(images), "index", idx, "prove_ms", time.Since(t0).Milliseconds())
	}
	return nil
}
