package federated

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/pixels"
)

// Trace is a verifier's account of where a registered model comes from:
// its training's transactions, each fetched with an inclusion proof
// against a checkpoint signed by the node key, and re-checked here from
// the signed transactions themselves (the node's records only say where
// to look).
type Trace struct {
	ModelID    string       `json:"model_id"`
	TrainingID string       `json:"training_id"`
	Commitment string       `json:"commitment"`
	Owners     []TraceOwner `json:"owners"`
	Rounds     []TraceRound `json:"rounds"`
	Threshold  int          `json:"threshold"`
	MinUpdates int          `json:"min_updates"`
	Entries    int          `json:"ledger_entries"`
	Checks     []TraceCheck `json:"checks"`
	ShareRule  string       `json:"share_method"`
	Checkpoint *TraceCPoint `json:"checkpoint"`
}

// TraceOwner is one data owner of the training.
type TraceOwner struct {
	Key        string `json:"key"`
	MerkleRoot []byte `json:"merkle_root"`
	Samples    uint64 `json:"samples"`
	ShareBp    uint32 `json:"share_bp"`
}

// TraceRound is one round.
type TraceRound struct {
	Round      int    `json:"round"`
	Updates    []int  `json:"updates"`
	Aggregated []int  `json:"aggregated"`
	Decryptors []int  `json:"decryptors"`
	Commitment string `json:"model_commitment"`
}

// TraceCheck is one verified fact.
type TraceCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// TraceCPoint is the checkpoint the entries were proven against.
type TraceCPoint struct {
	Size   uint64 `json:"size"`
	Signer []byte `json:"signer"`
}

// OK reports whether every check passed.
func (t *Trace) OK() bool {
	for _, c := range t.Checks {
		if !c.OK {
			return false
		}
	}
	return len(t.Checks) > 0
}

// ErrUntraced: the model has no training record on the ledger.
var ErrUntraced = errors.New("the model has no federated training record")

// TraceModel traces a registered model to its training: the link, the
// start, each owner's dataset commitment, the collective key and every
// round (updates, aggregate, result), each entry read through r (proven
// in the log under a head its anchor vouches for: a node key or a quorum
// of validators, and checked as every node checks it), and checks that
// the chain of digests holds: each round's updates were trained from the
// previous round's model and encrypted under the recorded key, each
// aggregate sums at least min_updates recorded updates, the datasets were
// fixed before the key, and the last round's commitment is the registered
// model's. The node's training records only say where to look. r.API must
// answer training queries (ledger.TrainingAPI). `veil verify-request` can
// call it for the model that answered a request.
func TraceModel(ctx context.Context, r *trust.Reader, modelID string) (*Trace, error) {
	api, ok := r.API.(ledger.TrainingAPI)
	if !ok {
		return nil, errors.New("trace: this ledger connection does not answer training queries")
	}
	head, err := r.Head(ctx)
	if err != nil {
		return nil, err
	}
	link, err := api.ModelTraining(ctx, modelID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("model %q: %w", modelID, ErrUntraced)
	}
	if err != nil {
		return nil, err
	}
	reg, err := api.Model(ctx, modelID, false)
	if err != nil {
		return nil, err
	}
	rec, err := api.Training(ctx, link.TrainingId)
	if err != nil {
		return nil, err
	}
	tr := &Trace{ModelID: modelID, TrainingID: link.TrainingId, Commitment: fmt.Sprintf("%x", reg.Model.Commitment)}
	check := func(name string, ok bool, format string, a ...any) bool {
		tr.Checks = append(tr.Checks, TraceCheck{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
		return ok
	}
	// need records a failed per-entry rule; passing rules are summarised
	// once the replay is done.
	need := func(name string, ok bool, format string, a ...any) bool {
		if !ok {
			check(name, false, format, a...)
		}
		return ok
	}
	updates := 0
	// Fetch and prove every entry: the training's, the registration, the link.
	indexes := slices.Clone(rec.TxIndexes)
	indexes = append(indexes, reg.Model.Index)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)
	type entry struct {
		index  uint64
		signer ed25519.PublicKey
		body   *ledgerv1.TxBody
	}
	var entries []entry
	for _, i := range indexes {
		tx, err := r.Entry(ctx, head, i)
		if err != nil {
			check("entry proven", false, "%v", err)
			return tr, nil
		}
		entries = append(entries, entry{i, tx.Signer, tx.Body})
	}
	tr.Entries = len(entries)
	tr.Checkpoint = &TraceCPoint{Size: head.GetSize(), Signer: head.GetSignerKey()}
	check("entries proven", true, "%d entries, each with an inclusion proof under the head of size %d the anchor vouches for", len(entries), head.GetSize())

	// Replay the training from the signed transactions.
	var start *ledgerv1.TrainingStart
	var coordinator ed25519.PublicKey
	datasets := map[int]*ledgerv1.DatasetCommitment{}
	var keyDigest []byte
	model := []byte(nil)
	type roundFacts struct {
		updates   map[int]*ledgerv1.TrainingUpdate
		aggregate *ledgerv1.TrainingAggregate
		result    *ledgerv1.TrainingRoundResult
	}
	rounds := map[int]*roundFacts{}
	var linkTx *ledgerv1.LinkModelTraining
	var linkSigner ed25519.PublicKey
	var registered *ledgerv1.RegisterModel
	owner := func(k []byte) int {
		if start == nil {
			return -1
		}
		return slices.IndexFunc(start.OwnerKeys, func(o []byte) bool { return bytes.Equal(o, k) })
	}
	for _, e := range entries {
		if id := trainingIDOf(e.body); id != "" && id != link.TrainingId {
			need("entries belong to the training", false, "entry %d is for training %q", e.index, id)
			return tr, nil
		}
		switch t := e.body.Tx.(type) {
		case *ledgerv1.TxBody_RegisterModel:
			if t.RegisterModel.ModelId == modelID {
				registered = t.RegisterModel
			}
		case *ledgerv1.TxBody_TrainingStart:
			if t.TrainingStart.TrainingId == link.TrainingId && start == nil {
				start, coordinator = t.TrainingStart, e.signer
				model = start.InitialModelDigest
			}
		case *ledgerv1.TxBody_DatasetCommitment:
			o := owner(e.signer)
			if !need("dataset by an owner, before the key", o >= 0 && keyDigest == nil && datasets[o] == nil, "entry %d", e.index) {
				return tr, nil
			}
			datasets[o] = t.DatasetCommitment
		case *ledgerv1.TxBody_TrainingKey:
			if !need("key by the coordinator, after every dataset", bytes.Equal(e.signer, coordinator) && len(datasets) == len(start.OwnerKeys), "entry %d", e.index) {
				return tr, nil
			}
			keyDigest = t.TrainingKey.KeyDigest
		case *ledgerv1.TxBody_TrainingUpdate:
			u, o := t.TrainingUpdate, owner(e.signer)
			r := rounds[int(u.Round)]
			if r == nil {
				r = &roundFacts{updates: map[int]*ledgerv1.TrainingUpdate{}}
				rounds[int(u.Round)] = r
			}
			if !need("update by an owner, from the previous round's model, under the key", o >= 0 && bytes.Equal(u.BaseModelDigest, model) &&
				bytes.Equal(u.KeyDigest, keyDigest) && r.aggregate == nil && r.updates[o] == nil, "entry %d (round %d, owner %d)", e.index, u.Round, o) {
				return tr, nil
			}
			r.updates[o] = u
			updates++
		case *ledgerv1.TxBody_TrainingAggregate:
			a := t.TrainingAggregate
			r := rounds[int(a.Round)]
			ok := r != nil && bytes.Equal(e.signer, coordinator) && r.aggregate == nil && len(a.Owners) >= int(start.MinUpdates)
			for _, o := range a.Owners {
				ok = ok && r.updates[int(o)] != nil
			}
			if !need("aggregate of at least min_updates recorded updates", ok, "entry %d (round %d, owners %v)", e.index, a.Round, a.Owners) {
				return tr, nil
			}
			r.aggregate = a
		case *ledgerv1.TxBody_TrainingRoundResult:
			res := t.TrainingRoundResult
			r := rounds[int(res.Round)]
			if !need("round result after its aggregate, decrypted by at least t owners", r != nil && r.aggregate != nil && r.result == nil &&
				bytes.Equal(e.signer, coordinator) && len(res.Decryptors) >= int(start.Threshold) && int(res.Round) == len(tr.Rounds)+1, "entry %d (round %d)", e.index, res.Round) {
				return tr, nil
			}
			r.result = res
			model = res.ModelDigest
			tr.Rounds = append(tr.Rounds, TraceRound{Round: int(res.Round), Aggregated: ints(r.aggregate.Owners), Decryptors: ints(res.Decryptors),
				Commitment: fmt.Sprintf("%x", res.ModelCommitment), Updates: sortedKeys(r.updates)})
		case *ledgerv1.TxBody_LinkModelTraining:
			if t.LinkModelTraining.ModelId == modelID {
				linkTx, linkSigner = t.LinkModelTraining, e.signer
			}
		}
	}
	if !check("training start found", start != nil, "training %s", link.TrainingId) {
		return tr, nil
	}
	tr.Threshold, tr.MinUpdates = int(start.Threshold), int(start.MinUpdates)
	if !check("registration found", registered != nil, "model %s at entry %d", modelID, reg.Model.Index) {
		return tr, nil
	}
	last := rounds[len(tr.Rounds)]
	check("at least one round", len(tr.Rounds) > 0, "%d rounds", len(tr.Rounds))
	if len(tr.Rounds) == 0 {
		return tr, nil
	}
	check("served model is the last round's model", bytes.Equal(registered.Commitment, last.result.ModelCommitment),
		"registered commitment %x, round %d commitment %x", registered.Commitment[:8], len(tr.Rounds), last.result.ModelCommitment[:8])
	check("link signed by the model's owner", linkTx != nil && bytes.Equal(linkSigner, reg.Model.OwnerKey), "")
	if linkTx != nil {
		var sum uint32
		for _, s := range linkTx.ShareBp {
			sum += s
		}
		check("shares: one per owner, summing to 10000", len(linkTx.ShareBp) == len(start.OwnerKeys) && sum == ledger.ShareBasisPoints, "%v", linkTx.ShareBp)
		tr.ShareRule = linkTx.ShareMethod
	}
	for o, k := range start.OwnerKeys {
		ow := TraceOwner{Key: fmt.Sprintf("%x", k)}
		if d := datasets[o]; d != nil {
			ow.MerkleRoot, ow.Samples = d.MerkleRoot, d.NumSamples
		}
		if linkTx != nil && o < len(linkTx.ShareBp) {
			ow.ShareBp = linkTx.ShareBp[o]
		}
		tr.Owners = append(tr.Owners, ow)
	}
	if !check("every owner committed its dataset before the key", len(datasets) == len(start.OwnerKeys) && keyDigest != nil, "%d datasets", len(datasets)) {
		return tr, nil
	}
	check("every round chains to the previous one", true, "%d rounds, %d updates: each signed by an owner, trained from the previous round's model, under the collective key %x", len(tr.Rounds), updates, keyDigest[:8])
	check("every aggregate sums at least min_updates recorded updates", true, "min_updates %d", start.MinUpdates)
	check("every round decrypted by at least t owners after its aggregate", true, "t = %d", start.Threshold)
	return tr, nil
}

// VerifySampleInModel checks a proof that a sample is (or is not) in the
// dataset owner committed to in a traced model's training.
func (t *Trace) VerifySampleInModel(owner int, img *pixels.Image, label uint8, p *SampleProof) (bool, error) {
	if owner < 0 || owner >= len(t.Owners) || !t.OK() {
		return false, errors.New("no such owner in a verified trace")
	}
	return VerifySample(t.Owners[owner].MerkleRoot, t.Owners[owner].Samples, img, label, p)
}

// trainingIDOf returns the training a training transaction is for.
func trainingIDOf(b *ledgerv1.TxBody) string {
	switch t := b.Tx.(type) {
	case *ledgerv1.TxBody_TrainingStart:
		return t.TrainingStart.TrainingId
	case *ledgerv1.TxBody_DatasetCommitment:
		return t.DatasetCommitment.TrainingId
	case *ledgerv1.TxBody_TrainingKey:
		return t.TrainingKey.TrainingId
	case *ledgerv1.TxBody_TrainingUpdate:
		return t.TrainingUpdate.TrainingId
	case *ledgerv1.TxBody_TrainingAggregate:
		return t.TrainingAggregate.TrainingId
	case *ledgerv1.TxBody_TrainingRoundResult:
		return t.TrainingRoundResult.TrainingId
	case *ledgerv1.TxBody_LinkModelTraining:
		return t.LinkModelTraining.TrainingId
	}
	return ""
}

func ints(u []uint32) []int {
	out := make([]int, len(u))
	for i, x := range u {
		out[i] = int(x)
	}
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
