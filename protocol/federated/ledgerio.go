package federated

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// submit signs and submits one transaction body.
func submit(ctx context.Context, api ledger.API, chainID string, key ed25519.PrivateKey, body *ledgerv1.TxBody) (*ledgerv1.SubmitResponse, error) {
	body.ChainId = chainID
	raw, err := ledger.SignTx(key, body)
	if err != nil {
		return nil, err
	}
	return api.Submit(ctx, raw)
}

// pollInterval is how often a role re-reads the ledger while it waits.
const pollInterval = 20 * time.Millisecond

// waitFor re-reads the ledger until cond holds on the training record.
func waitFor(ctx context.Context, api ledger.TrainingAPI, id string, what string, cond func(*ledgerv1.TrainingRecord) (bool, error)) (*ledgerv1.TrainingRecord, error) {
	for {
		rec, err := api.Training(ctx, id)
		switch {
		case err == nil:
			ok, cerr := cond(rec)
			if cerr != nil {
				return nil, cerr
			}
			if ok {
				return rec, nil
			}
		case !errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("read training %q: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// waitRound re-reads round r until cond holds.
func waitRound(ctx context.Context, api ledger.TrainingAPI, id string, r int, what string, cond func(*ledgerv1.TrainingRoundRecord) bool) (*ledgerv1.TrainingRoundRecord, error) {
	for {
		rnd, err := api.TrainingRound(ctx, id, uint32(r))
		switch {
		case err == nil && cond(rnd):
			return rnd, nil
		case err != nil && !errors.Is(err, ledger.ErrNotFound):
			return nil, fmt.Errorf("read round %d of training %q: %w", r, id, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// crsSeed derives the common reference string of the collective key from
// the ledger record once every owner has committed: nobody chooses it
// alone after seeing the others' commitments.
func crsSeed(rec *ledgerv1.TrainingRecord) ([]byte, error) {
	if len(rec.Datasets) != len(rec.GetStart().GetOwnerKeys()) {
		return nil, fmt.Errorf("training %q: %d of %d datasets committed", rec.TrainingId, len(rec.Datasets), len(rec.GetStart().GetOwnerKeys()))
	}
	h := sha256.New()
	h.Write([]byte("veil/federated/crs\x00" + rec.TrainingId + "\x00"))
	for o := range rec.Start.OwnerKeys {
		ds := datasetOf(rec, o)
		h.Write(ds.MerkleRoot)
		h.Write(ds.KemKey)
	}
	return h.Sum(nil), nil
}

// datasetOf returns owner o's dataset record (nil if not committed).
func datasetOf(rec *ledgerv1.TrainingRecord, o int) *ledgerv1.DatasetRecord {
	for _, d := range rec.Datasets {
		if int(d.Owner) == o {
			return d
		}
	}
	return nil
}

// committedWeights returns w_o = n_o / Σ n from the dataset commitments.
func committedWeights(rec *ledgerv1.TrainingRecord) ([]float64, error) {
	n := len(rec.GetStart().GetOwnerKeys())
	w := make([]float64, n)
	var total float64
	for o := range n {
		d := datasetOf(rec, o)
		if d == nil {
			return nil, fmt.Errorf("owner %d has not committed its dataset", o)
		}
		w[o] = float64(d.NumSamples)
		total += w[o]
	}
	for o := range w {
		w[o] /= total
	}
	return w, nil
}

// updateDigestOf returns owner o's recorded update digest in a round.
func updateDigestOf(rnd *ledgerv1.TrainingRoundRecord, o int) []byte {
	for _, u := range rnd.GetUpdates() {
		if int(u.Owner) == o {
			return u.UpdateDigest
		}
	}
	return nil
}

func equal32(a []byte, b [32]byte) bool { return bytes.Equal(a, b[:]) }
