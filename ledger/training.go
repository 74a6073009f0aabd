package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Federated training records (issue 15, docs/training.md). A training is a
// sequence of transactions, each checked against the record so far:
//
//	TrainingStart        coordinator  owners, threshold t, min updates, rounds
//	DatasetCommitment    each owner   Merkle root of its samples, before the key
//	TrainingKey          coordinator  collective key digest, after all datasets
//	TrainingUpdate       owner        round r, digest, trained from the round's model
//	TrainingAggregate    coordinator  the one aggregate of round r (≥ min updates)
//	TrainingRoundResult  coordinator  round r's model digest and commitment
//	LinkModelTraining    model owner  a registered model is the training's last model
//
// Everything the rules read is in the ledger state; nothing reads a clock.

var (
	bTrainings      = []byte("trainings")       // training id -> TrainingRecord
	bTrainingRounds = []byte("training_rounds") // training id || 0 || round (4 bytes BE) -> TrainingRoundRecord
	bTrainingSeen   = []byte("training_seen")   // training id || 0 || update digest -> round (4 bytes BE)
	bModelTraining  = []byte("model_training")  // model id -> ModelTrainingRecord
)

// The training buckets join the store's lists here rather than in store.go,
// so that parallel branches adding their own buckets do not conflict.
func init() {
	tb := [][]byte{bTrainings, bTrainingRounds, bTrainingSeen, bModelTraining}
	allBuckets = append(allBuckets, tb...)
	stateBuckets = append(stateBuckets, tb...)
}

// Limits of the training rules (consensus rules).
const (
	// MaxTrainingOwners bounds the data owners of one training.
	MaxTrainingOwners = 64
	// MaxTrainingRounds bounds a training's planned rounds.
	MaxTrainingRounds = 100000
	// MaxSamplesPerDataset bounds an owner's declared sample count.
	MaxSamplesPerDataset = 1 << 40
	// ShareBasisPoints is the sum of the owners' shares.
	ShareBasisPoints = 10000
)

// TrainingAPI is a ledger that also answers queries about federated
// trainings. The embedded and CometBFT nodes (through Store) and the
// remote client (query.Client) implement it.
type TrainingAPI interface {
	API
	// Training returns a training's record.
	Training(ctx context.Context, trainingID string) (*ledgerv1.TrainingRecord, error)
	// TrainingRound returns one round of a training.
	TrainingRound(ctx context.Context, trainingID string, round uint32) (*ledgerv1.TrainingRoundRecord, error)
	// ModelTraining returns the training link of a registered model.
	ModelTraining(ctx context.Context, modelID string) (*ledgerv1.ModelTrainingRecord, error)
}

func roundKey(id string, round uint32) []byte {
	k := append([]byte(id), 0)
	return binary.BigEndian.AppendUint32(k, round)
}

func seenKey(id string, digest []byte) []byte {
	return append(append([]byte(id), 0), digest...)
}

// checkTrainingFields checks the stateless shape of a training
// transaction; ok is false for other transaction types.
func checkTrainingFields(body *ledgerv1.TxBody) (ok bool, rj *Rejection) {
	switch t := body.Tx.(type) {
	case *ledgerv1.TxBody_TrainingStart:
		s := t.TrainingStart
		if rj := firstRejection(checkID("training_id", s.TrainingId), checkText("architecture", s.Architecture), checkText("he_parameters", s.HeParameters),
			checkText("config", s.Config), check32("initial_model_digest", s.InitialModelDigest), check32("validation_digest", s.ValidationDigest),
			check32("coordinator_kem_key", s.CoordinatorKemKey)); rj != nil {
			return true, rj
		}
		n := len(s.OwnerKeys)
		if n < 2 || n > MaxTrainingOwners {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "a training has 2..%d owners, not %d", MaxTrainingOwners, n)
		}
		for i, k := range s.OwnerKeys {
			if len(k) != ed25519.PublicKeySize {
				return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "owner key %d must be %d bytes", i, ed25519.PublicKeySize)
			}
			for _, other := range s.OwnerKeys[:i] {
				if bytes.Equal(k, other) {
					return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "owner key %d listed twice", i)
				}
			}
		}
		if s.Threshold < 2 || int(s.Threshold) > n {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "threshold %d: want 2..%d (t = 1 would let any single owner decrypt)", s.Threshold, n)
		}
		if s.MinUpdates < 2 || int(s.MinUpdates) > n {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "min_updates %d: want 2..%d (an aggregate of one update is that update)", s.MinUpdates, n)
		}
		if s.Rounds < 1 || s.Rounds > MaxTrainingRounds {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "rounds %d: want 1..%d", s.Rounds, MaxTrainingRounds)
		}
		if s.HeParameters == "" {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "he_parameters is empty")
		}
	case *ledgerv1.TxBody_DatasetCommitment:
		d := t.DatasetCommitment
		if rj := firstRejection(checkID("training_id", d.TrainingId), check32("merkle_root", d.MerkleRoot), check32("kem_key", d.KemKey)); rj != nil {
			return true, rj
		}
		if d.NumSamples < 1 || d.NumSamples > MaxSamplesPerDataset {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "num_samples %d: want 1..2^40", d.NumSamples)
		}
	case *ledgerv1.TxBody_TrainingKey:
		k := t.TrainingKey
		return true, firstRejection(checkID("training_id", k.TrainingId), check32("key_digest", k.KeyDigest))
	case *ledgerv1.TxBody_TrainingUpdate:
		u := t.TrainingUpdate
		if rj := firstRejection(checkID("training_id", u.TrainingId), check32("update_digest", u.UpdateDigest),
			check32("base_model_digest", u.BaseModelDigest), check32("key_digest", u.KeyDigest)); rj != nil {
			return true, rj
		}
		if u.Round < 1 {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "rounds start at 1")
		}
	case *ledgerv1.TxBody_TrainingAggregate:
		a := t.TrainingAggregate
		if rj := firstRejection(checkID("training_id", a.TrainingId), check32("aggregate_digest", a.AggregateDigest), checkOwnerList("owners", a.Owners)); rj != nil {
			return true, rj
		}
	case *ledgerv1.TxBody_TrainingRoundResult:
		r := t.TrainingRoundResult
		if rj := firstRejection(checkID("training_id", r.TrainingId), check32("model_digest", r.ModelDigest),
			check32("model_commitment", r.ModelCommitment), checkOwnerList("decryptors", r.Decryptors)); rj != nil {
			return true, rj
		}
		if r.ValidationAccuracyBp > ShareBasisPoints {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "validation accuracy above 10000 basis points")
		}
	case *ledgerv1.TxBody_LinkModelTraining:
		l := t.LinkModelTraining
		if rj := firstRejection(checkID("model_id", l.ModelId), checkID("training_id", l.TrainingId), checkText("share_method", l.ShareMethod)); rj != nil {
			return true, rj
		}
		if len(l.ShareBp) < 2 || len(l.ShareBp) > MaxTrainingOwners || len(l.LooAccuracyBp) > MaxTrainingOwners {
			return true, reject(ledgerv1.Code_CODE_BAD_SHARES, "%d shares: want one per owner", len(l.ShareBp))
		}
		var sum uint64
		for _, s := range l.ShareBp {
			sum += uint64(s)
		}
		if sum != ShareBasisPoints {
			return true, reject(ledgerv1.Code_CODE_BAD_SHARES, "shares sum to %d basis points, not %d", sum, ShareBasisPoints)
		}
		if l.FullAccuracyBp > ShareBasisPoints || slices.ContainsFunc(l.LooAccuracyBp, func(a uint32) bool { return a > ShareBasisPoints }) {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "accuracies above 10000 basis points")
		}
	default:
		return false, nil
	}
	return true, nil
}

// checkOwnerList checks a strictly ascending, non-empty list of owner
// indexes (bounded by MaxTrainingOwners; the state check bounds it by N).
func checkOwnerList(what string, owners []uint32) *Rejection {
	if len(owners) == 0 || len(owners) > MaxTrainingOwners {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s: want 1..%d owner indexes", what, MaxTrainingOwners)
	}
	for i, o := range owners {
		if o >= MaxTrainingOwners || (i > 0 && o <= owners[i-1]) {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s must be distinct owner indexes in ascending order", what)
		}
	}
	return nil
}

func getTraining(btx *bolt.Tx, id string) (*ledgerv1.TrainingRecord, *Rejection) {
	rec := &ledgerv1.TrainingRecord{}
	ok, err := getProto(btx, bTrainings, []byte(id), rec)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored training: %v", err)
	}
	if !ok {
		return nil, reject(ledgerv1.Code_CODE_UNKNOWN_TRAINING, "training %q does not exist", trunc(id))
	}
	return rec, nil
}

func getTrainingRound(btx *bolt.Tx, id string, round uint32) (*ledgerv1.TrainingRoundRecord, *Rejection) {
	rec := &ledgerv1.TrainingRoundRecord{TrainingId: id, Round: round}
	if _, err := getProto(btx, bTrainingRounds, roundKey(id, round), rec); err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored training round: %v", err)
	}
	return rec, nil
}

// ownerIndex returns the index of key among the training's owners, or -1.
func ownerIndex(rec *ledgerv1.TrainingRecord, key []byte) int {
	return slices.IndexFunc(rec.Start.OwnerKeys, func(k []byte) bool { return bytes.Equal(k, key) })
}

// checkTraining runs the stateful rules of a training transaction; ok is
// false for other transaction types.
func (s *Store) checkTraining(btx *bolt.Tx, tx *Tx, index uint64) (w writeFn, rj *Rejection, ok bool) {
	switch t := tx.Body.Tx.(type) {
	case *ledgerv1.TxBody_TrainingStart:
		w, rj = s.checkTrainingStart(btx, tx, t.TrainingStart, index)
	case *ledgerv1.TxBody_DatasetCommitment:
		w, rj = s.checkDatasetCommitment(btx, tx, t.DatasetCommitment, index)
	case *ledgerv1.TxBody_TrainingKey:
		w, rj = s.checkTrainingKey(btx, tx, t.TrainingKey, index)
	case *ledgerv1.TxBody_TrainingUpdate:
		w, rj = s.checkTrainingUpdate(btx, tx, t.TrainingUpdate, index)
	case *ledgerv1.TxBody_TrainingAggregate:
		w, rj = s.checkTrainingAggregate(btx, tx, t.TrainingAggregate, index)
	case *ledgerv1.TxBody_TrainingRoundResult:
		w, rj = s.checkTrainingRoundResult(btx, tx, t.TrainingRoundResult, index)
	case *ledgerv1.TxBody_LinkModelTraining:
		w, rj = s.checkLinkModelTraining(btx, tx, t.LinkModelTraining, index)
	default:
		return nil, nil, false
	}
	return w, rj, true
}

func (s *Store) checkTrainingStart(btx *bolt.Tx, tx *Tx, st *ledgerv1.TrainingStart, index uint64) (writeFn, *Rejection) {
	if get(btx, bTrainings, []byte(st.TrainingId)) != nil {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_EXISTS, "training %q already exists", trunc(st.TrainingId))
	}
	for _, k := range st.OwnerKeys {
		if bytes.Equal(k, tx.Signer) {
			return nil, reject(ledgerv1.Code_CODE_INVALID_FIELD, "the coordinator may not be one of the owners (it would see its own shares of the others' data)")
		}
	}
	rec := &ledgerv1.TrainingRecord{
		TrainingId: st.TrainingId, CoordinatorKey: tx.Signer, Start: st, StartIndex: index,
		ModelDigest: st.InitialModelDigest, TxIndexes: []uint64{index},
	}
	return func(w *writer) error { return w.putProto(bTrainings, []byte(st.TrainingId), rec) }, nil
}

func (s *Store) checkDatasetCommitment(btx *bolt.Tx, tx *Tx, d *ledgerv1.DatasetCommitment, index uint64) (writeFn, *Rejection) {
	rec, rj := getTraining(btx, d.TrainingId)
	if rj != nil {
		return nil, rj
	}
	owner := ownerIndex(rec, tx.Signer)
	if owner < 0 {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "the signer is not an owner of training %q", trunc(d.TrainingId))
	}
	if len(rec.KeyDigest) != 0 {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q has its collective key: datasets are fixed", trunc(d.TrainingId))
	}
	if slices.ContainsFunc(rec.Datasets, func(ds *ledgerv1.DatasetRecord) bool { return ds.Owner == uint32(owner) }) {
		return nil, reject(ledgerv1.Code_CODE_DATASET_EXISTS, "owner %d of training %q already committed its dataset", owner, trunc(d.TrainingId))
	}
	rec.Datasets = append(rec.Datasets, &ledgerv1.DatasetRecord{Owner: uint32(owner), MerkleRoot: d.MerkleRoot, NumSamples: d.NumSamples, KemKey: d.KemKey, Index: index})
	rec.TxIndexes = append(rec.TxIndexes, index)
	return func(w *writer) error { return w.putProto(bTrainings, []byte(d.TrainingId), rec) }, nil
}

func (s *Store) coordinatorRecord(btx *bolt.Tx, tx *Tx, id string) (*ledgerv1.TrainingRecord, *Rejection) {
	rec, rj := getTraining(btx, id)
	if rj != nil {
		return nil, rj
	}
	if !bytes.Equal(tx.Signer, rec.CoordinatorKey) {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "only the coordinator of training %q may send this", trunc(id))
	}
	return rec, nil
}

func (s *Store) checkTrainingKey(btx *bolt.Tx, tx *Tx, k *ledgerv1.TrainingKey, index uint64) (writeFn, *Rejection) {
	rec, rj := s.coordinatorRecord(btx, tx, k.TrainingId)
	if rj != nil {
		return nil, rj
	}
	if len(rec.KeyDigest) != 0 {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q already has its collective key", trunc(k.TrainingId))
	}
	if len(rec.Datasets) != len(rec.Start.OwnerKeys) {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_PHASE, "%d of %d owners committed their datasets", len(rec.Datasets), len(rec.Start.OwnerKeys))
	}
	rec.KeyDigest, rec.KeyIndex = k.KeyDigest, index
	rec.TxIndexes = append(rec.TxIndexes, index)
	return func(w *writer) error { return w.putProto(bTrainings, []byte(k.TrainingId), rec) }, nil
}

// openRound checks that round is the training's current round and that the
// training is still running.
func openRound(rec *ledgerv1.TrainingRecord, round uint32) *Rejection {
	if len(rec.KeyDigest) == 0 {
		return reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q has no collective key yet", trunc(rec.TrainingId))
	}
	if rec.ModelId != "" {
		return reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q is finished (linked to model %q)", trunc(rec.TrainingId), trunc(rec.ModelId))
	}
	if round != rec.RoundsDone+1 {
		return reject(ledgerv1.Code_CODE_ROUND_MISMATCH, "round %d, training %q is at round %d", round, trunc(rec.TrainingId), rec.RoundsDone+1)
	}
	if round > rec.Start.Rounds {
		return reject(ledgerv1.Code_CODE_ROUND_MISMATCH, "round %d is beyond the %d planned rounds", round, rec.Start.Rounds)
	}
	return nil
}

func (s *Store) checkTrainingUpdate(btx *bolt.Tx, tx *Tx, u *ledgerv1.TrainingUpdate, index uint64) (writeFn, *Rejection) {
	rec, rj := getTraining(btx, u.TrainingId)
	if rj != nil {
		return nil, rj
	}
	owner := ownerIndex(rec, tx.Signer)
	if owner < 0 {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "the signer is not an owner of training %q", trunc(u.TrainingId))
	}
	if rj := openRound(rec, u.Round); rj != nil {
		return nil, rj
	}
	rnd, rj := getTrainingRound(btx, u.TrainingId, u.Round)
	if rj != nil {
		return nil, rj
	}
	if len(rnd.AggregateDigest) != 0 {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_PHASE, "round %d already has its aggregate", u.Round)
	}
	if slices.ContainsFunc(rnd.Updates, func(x *ledgerv1.TrainingUpdateRecord) bool { return x.Owner == uint32(owner) }) {
		return nil, reject(ledgerv1.Code_CODE_DUPLICATE_UPDATE, "owner %d already sent its update for round %d", owner, u.Round)
	}
	if !bytes.Equal(u.KeyDigest, rec.KeyDigest) {
		return nil, reject(ledgerv1.Code_CODE_KEY_MISMATCH, "update under key %x, the training's key is %x", u.KeyDigest[:8], rec.KeyDigest[:8])
	}
	if !bytes.Equal(u.BaseModelDigest, rec.ModelDigest) {
		return nil, reject(ledgerv1.Code_CODE_STALE_MODEL, "update trained from model %x, round %d starts from %x", u.BaseModelDigest[:8], u.Round, rec.ModelDigest[:8])
	}
	if v := get(btx, bTrainingSeen, seenKey(u.TrainingId, u.UpdateDigest)); v != nil {
		return nil, reject(ledgerv1.Code_CODE_REPLAYED_UPDATE, "update %x was already recorded in round %d", u.UpdateDigest[:8], binary.BigEndian.Uint32(v))
	}
	rnd.Updates = append(rnd.Updates, &ledgerv1.TrainingUpdateRecord{Owner: uint32(owner), UpdateDigest: u.UpdateDigest, Index: index})
	rec.TxIndexes = append(rec.TxIndexes, index)
	return func(w *writer) error {
		return errors.Join(w.putProto(bTrainingRounds, roundKey(u.TrainingId, u.Round), rnd),
			w.put(bTrainingSeen, seenKey(u.TrainingId, u.UpdateDigest), binary.BigEndian.AppendUint32(nil, u.Round)),
			w.putProto(bTrainings, []byte(u.TrainingId), rec))
	}, nil
}

func (s *Store) checkTrainingAggregate(btx *bolt.Tx, tx *Tx, a *ledgerv1.TrainingAggregate, index uint64) (writeFn, *Rejection) {
	rec, rj := s.coordinatorRecord(btx, tx, a.TrainingId)
	if rj != nil {
		return nil, rj
	}
	if rj := openRound(rec, a.Round); rj != nil {
		return nil, rj
	}
	rnd, rj := getTrainingRound(btx, a.TrainingId, a.Round)
	if rj != nil {
		return nil, rj
	}
	if len(rnd.AggregateDigest) != 0 {
		return nil, reject(ledgerv1.Code_CODE_DUPLICATE_AGGREGATE, "round %d already has its aggregate at index %d", a.Round, rnd.AggregateIndex)
	}
	if len(a.Owners) < int(rec.Start.MinUpdates) {
		return nil, reject(ledgerv1.Code_CODE_TOO_FEW_UPDATES, "an aggregate of %d updates, the training requires at least %d", len(a.Owners), rec.Start.MinUpdates)
	}
	for _, o := range a.Owners {
		if !slices.ContainsFunc(rnd.Updates, func(x *ledgerv1.TrainingUpdateRecord) bool { return x.Owner == o }) {
			return nil, reject(ledgerv1.Code_CODE_MISSING_UPDATE, "owner %d has no update in round %d", o, a.Round)
		}
	}
	rnd.AggregateOwners, rnd.AggregateDigest, rnd.AggregateIndex = a.Owners, a.AggregateDigest, index
	rec.TxIndexes = append(rec.TxIndexes, index)
	return func(w *writer) error {
		return errors.Join(w.putProto(bTrainingRounds, roundKey(a.TrainingId, a.Round), rnd), w.putProto(bTrainings, []byte(a.TrainingId), rec))
	}, nil
}

func (s *Store) checkTrainingRoundResult(btx *bolt.Tx, tx *Tx, r *ledgerv1.TrainingRoundResult, index uint64) (writeFn, *Rejection) {
	rec, rj := s.coordinatorRecord(btx, tx, r.TrainingId)
	if rj != nil {
		return nil, rj
	}
	if rj := openRound(rec, r.Round); rj != nil {
		return nil, rj
	}
	rnd, rj := getTrainingRound(btx, r.TrainingId, r.Round)
	if rj != nil {
		return nil, rj
	}
	if len(rnd.AggregateDigest) == 0 {
		return nil, reject(ledgerv1.Code_CODE_NO_AGGREGATE, "round %d has no aggregate to decrypt", r.Round)
	}
	n := uint32(len(rec.Start.OwnerKeys))
	if len(r.Decryptors) < int(rec.Start.Threshold) || r.Decryptors[len(r.Decryptors)-1] >= n {
		return nil, reject(ledgerv1.Code_CODE_TOO_FEW_DECRYPTORS, "decryptors %v: want at least %d of the %d owners", r.Decryptors, rec.Start.Threshold, n)
	}
	rnd.ModelDigest, rnd.ModelCommitment, rnd.Decryptors, rnd.ResultIndex = r.ModelDigest, r.ModelCommitment, r.Decryptors, index
	rec.RoundsDone = r.Round
	rec.ModelDigest, rec.ModelCommitment = r.ModelDigest, r.ModelCommitment
	rec.TxIndexes = append(rec.TxIndexes, index)
	return func(w *writer) error {
		return errors.Join(w.putProto(bTrainingRounds, roundKey(r.TrainingId, r.Round), rnd), w.putProto(bTrainings, []byte(r.TrainingId), rec))
	}, nil
}

func (s *Store) checkLinkModelTraining(btx *bolt.Tx, tx *Tx, l *ledgerv1.LinkModelTraining, index uint64) (writeFn, *Rejection) {
	m, rj := getModel(btx, l.ModelId)
	if rj != nil {
		return nil, rj
	}
	if !bytes.Equal(tx.Signer, m.OwnerKey) {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "only the owner of model %q may link it to a training", trunc(l.ModelId))
	}
	rec, rj := getTraining(btx, l.TrainingId)
	if rj != nil {
		return nil, rj
	}
	if get(btx, bModelTraining, []byte(l.ModelId)) != nil || rec.ModelId != "" {
		return nil, reject(ledgerv1.Code_CODE_ALREADY_LINKED, "model %q or training %q is already linked", trunc(l.ModelId), trunc(l.TrainingId))
	}
	if rec.RoundsDone == 0 {
		return nil, reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q has no completed round", trunc(l.TrainingId))
	}
	if !bytes.Equal(m.Commitment, rec.ModelCommitment) {
		return nil, reject(ledgerv1.Code_CODE_MODEL_MISMATCH, "model %q commits to %x, the last round of training %q to %x", trunc(l.ModelId), m.Commitment[:8], trunc(l.TrainingId), rec.ModelCommitment[:8])
	}
	n := len(rec.Start.OwnerKeys)
	if len(l.ShareBp) != n || (len(l.LooAccuracyBp) != 0 && len(l.LooAccuracyBp) != n) {
		return nil, reject(ledgerv1.Code_CODE_BAD_SHARES, "%d shares and %d leave-one-out accuracies for %d owners", len(l.ShareBp), len(l.LooAccuracyBp), n)
	}
	rec.ModelId = l.ModelId
	rec.TxIndexes = append(rec.TxIndexes, index)
	link := &ledgerv1.ModelTrainingRecord{ModelId: l.ModelId, TrainingId: l.TrainingId, ShareBp: l.ShareBp, OwnerKeys: rec.Start.OwnerKeys, ShareMethod: l.ShareMethod, Index: index}
	return func(w *writer) error {
		return errors.Join(w.putProto(bModelTraining, []byte(l.ModelId), link), w.putProto(bTrainings, []byte(l.TrainingId), rec))
	}, nil
}

// CheckModelTraining is the rule RegisterModel can apply when it names a
// training (issue 11): the training exists, has completed rounds, is not
// linked yet, and its last round committed to commitment.
func CheckModelTraining(btx *bolt.Tx, trainingID string, commitment []byte) *Rejection {
	rec, rj := getTraining(btx, trainingID)
	if rj != nil {
		return rj
	}
	if rec.RoundsDone == 0 || rec.ModelId != "" {
		return reject(ledgerv1.Code_CODE_TRAINING_PHASE, "training %q has no completed round or is already linked", trunc(trainingID))
	}
	if !bytes.Equal(commitment, rec.ModelCommitment) {
		return reject(ledgerv1.Code_CODE_MODEL_MISMATCH, "the model's commitment is not the last round's of training %q", trunc(trainingID))
	}
	return nil
}

// describeTraining summarises a training transaction for display.
func describeTraining(b *ledgerv1.TxBody) (kind, summary string, ok bool) {
	switch t := b.Tx.(type) {
	case *ledgerv1.TxBody_TrainingStart:
		s := t.TrainingStart
		return "TrainingStart", fmt.Sprintf("training %s: %d owners, %d-of-%d decryption, %d rounds", trunc(s.TrainingId), len(s.OwnerKeys), s.Threshold, len(s.OwnerKeys), s.Rounds), true
	case *ledgerv1.TxBody_DatasetCommitment:
		d := t.DatasetCommitment
		return "DatasetCommitment", fmt.Sprintf("training %s: %d samples, root %x", trunc(d.TrainingId), d.NumSamples, d.MerkleRoot), true
	case *ledgerv1.TxBody_TrainingKey:
		return "TrainingKey", fmt.Sprintf("training %s: collective key %x", trunc(t.TrainingKey.TrainingId), t.TrainingKey.KeyDigest), true
	case *ledgerv1.TxBody_TrainingUpdate:
		u := t.TrainingUpdate
		return "TrainingUpdate", fmt.Sprintf("training %s round %d: update %x", trunc(u.TrainingId), u.Round, u.UpdateDigest), true
	case *ledgerv1.TxBody_TrainingAggregate:
		a := t.TrainingAggregate
		return "TrainingAggregate", fmt.Sprintf("training %s round %d: owners %v, aggregate %x", trunc(a.TrainingId), a.Round, a.Owners, a.AggregateDigest), true
	case *ledgerv1.TxBody_TrainingRoundResult:
		r := t.TrainingRoundResult
		return "TrainingRoundResult", fmt.Sprintf("training %s round %d: model %x, decrypted by %v", trunc(r.TrainingId), r.Round, r.ModelCommitment, r.Decryptors), true
	case *ledgerv1.TxBody_LinkModelTraining:
		l := t.LinkModelTraining
		return "LinkModelTraining", fmt.Sprintf("model %s from training %s, shares %v", trunc(l.ModelId), trunc(l.TrainingId), l.ShareBp), true
	}
	return "", "", false
}

// Training returns a training's record.
func (s *Store) Training(_ context.Context, id string) (r *ledgerv1.TrainingRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		var rj *Rejection
		if r, rj = getTraining(tx, id); rj != nil {
			if rj.Code == ledgerv1.Code_CODE_UNKNOWN_TRAINING {
				return fmt.Errorf("training %q: %w", id, ErrNotFound)
			}
			return rj
		}
		return nil
	})
	return r, err
}

// TrainingRound returns one round of a training (empty if it has not begun).
func (s *Store) TrainingRound(_ context.Context, id string, round uint32) (r *ledgerv1.TrainingRoundRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if get(tx, bTrainings, []byte(id)) == nil {
			return fmt.Errorf("training %q: %w", id, ErrNotFound)
		}
		r = &ledgerv1.TrainingRoundRecord{}
		ok, err := getProto(tx, bTrainingRounds, roundKey(id, round), r)
		if err == nil && !ok {
			err = fmt.Errorf("training %q round %d: %w", id, round, ErrNotFound)
		}
		return err
	})
	return r, err
}

// ModelTraining returns the training link of a model.
func (s *Store) ModelTraining(_ context.Context, modelID string) (r *ledgerv1.ModelTrainingRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		r = &ledgerv1.ModelTrainingRecord{}
		ok, err := getProto(tx, bModelTraining, []byte(modelID), r)
		if err == nil && !ok {
			err = fmt.Errorf("training of model %q: %w", modelID, ErrNotFound)
		}
		return err
	})
	return r, err
}

// getModelTrainingLink returns a model's training link, or nil when the
// model was not linked to a training (the market pays royalties by it).
func getModelTrainingLink(btx *bolt.Tx, modelID string) (*ledgerv1.ModelTrainingRecord, *Rejection) {
	r := &ledgerv1.ModelTrainingRecord{}
	ok, err := getProto(btx, bModelTraining, []byte(modelID), r)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored training link: %v", err)
	}
	if !ok {
		return nil, nil
	}
	return r, nil
}
