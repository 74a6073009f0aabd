package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
)

var (
	_ ledger.TrainingAPI = (*embedded.Node)(nil)
	_ ledger.TrainingAPI = (*query.Client)(nil)
)

// trainingFixture signs the transactions of one training: a coordinator,
// four owners, a model owner.
type trainingFixture struct {
	f           *ledgertest.Fixture
	id          string
	coordinator ed25519.PrivateKey
	owners      []ed25519.PrivateKey
	key         []byte // collective key digest
	models      [][]byte
}

func d32(label string) []byte { d := sha256.Sum256([]byte(label)); return d[:] }

func newTrainingFixture(id string, owners int) *trainingFixture {
	tf := &trainingFixture{f: ledgertest.NewFixture(chain, "training-"+id), id: id, coordinator: ledgertest.Key("coordinator " + id), key: d32("key " + id)}
	for i := range owners {
		tf.owners = append(tf.owners, ledgertest.Key(fmt.Sprintf("owner %s %d", id, i)))
	}
	tf.models = [][]byte{d32("model 0 " + id)}
	return tf
}

func (tf *trainingFixture) start(mod ...func(*ledgerv1.TrainingStart)) []byte {
	st := &ledgerv1.TrainingStart{
		TrainingId: tf.id, Architecture: "784-32-128-sq-10", Threshold: 3, MinUpdates: 3, Rounds: 5, HeParameters: "ckks-test",
		InitialModelDigest: tf.models[0], ValidationDigest: d32("validation"), CoordinatorKemKey: d32("kem"),
	}
	for _, o := range tf.owners {
		st.OwnerKeys = append(st.OwnerKeys, o.Public().(ed25519.PublicKey))
	}
	for _, m := range mod {
		m(st)
	}
	return tf.f.Sign(tf.coordinator, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingStart{TrainingStart: st}})
}

func (tf *trainingFixture) dataset(owner int) []byte {
	return tf.f.Sign(tf.owners[owner], &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_DatasetCommitment{DatasetCommitment: &ledgerv1.DatasetCommitment{
		TrainingId: tf.id, MerkleRoot: d32(fmt.Sprint("root", owner)), NumSamples: uint64(1000 + owner), KemKey: d32(fmt.Sprint("kem", owner)),
	}}})
}

func (tf *trainingFixture) keyTx() []byte {
	return tf.f.Sign(tf.coordinator, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingKey{TrainingKey: &ledgerv1.TrainingKey{TrainingId: tf.id, KeyDigest: tf.key}}})
}

func updateDigest(id string, round uint32, owner int) []byte {
	return d32(fmt.Sprintf("update %s %d %d", id, round, owner))
}

func (tf *trainingFixture) update(owner int, round uint32, mod ...func(*ledgerv1.TrainingUpdate)) []byte {
	u := &ledgerv1.TrainingUpdate{TrainingId: tf.id, Round: round, UpdateDigest: updateDigest(tf.id, round, owner), BaseModelDigest: tf.models[len(tf.models)-1], KeyDigest: tf.key}
	for _, m := range mod {
		m(u)
	}
	return tf.f.Sign(tf.owners[owner], &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingUpdate{TrainingUpdate: u}})
}

func (tf *trainingFixture) aggregate(round uint32, owners ...uint32) []byte {
	return tf.f.Sign(tf.coordinator, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingAggregate{TrainingAggregate: &ledgerv1.TrainingAggregate{
		TrainingId: tf.id, Round: round, Owners: owners, AggregateDigest: d32(fmt.Sprint("aggregate", tf.id, round, owners)),
	}}})
}

// result closes round with a new model digest (and commitment), which
// becomes the base of the next round's updates.
func (tf *trainingFixture) result(round uint32, decryptors ...uint32) []byte {
	m := d32(fmt.Sprint("model", tf.id, round))
	tf.models = append(tf.models, m)
	return tf.f.Sign(tf.coordinator, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingRoundResult{TrainingRoundResult: &ledgerv1.TrainingRoundResult{
		TrainingId: tf.id, Round: round, ModelDigest: m, ModelCommitment: commitmentOf(tf.id, round), Decryptors: decryptors, SubsetsChecked: 1,
	}}})
}

func commitmentOf(id string, round uint32) []byte { return d32(fmt.Sprint("commitment", id, round)) }

func (tf *trainingFixture) register(modelID string, commitment []byte) []byte {
	body := tf.f.RegisterBody(modelID)
	body.Commitment = commitment
	raw, err := ledger.Signer{ChainID: chain, Key: tf.coordinator}.RegisterModel(body, tf.f.Server)
	if err != nil {
		panic(err)
	}
	return raw
}

func (tf *trainingFixture) link(signer ed25519.PrivateKey, modelID string, shares ...uint32) []byte {
	return tf.f.Sign(signer, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_LinkModelTraining{LinkModelTraining: &ledgerv1.LinkModelTraining{
		ModelId: modelID, TrainingId: tf.id, ShareBp: shares, ShareMethod: "test",
	}}})
}

func wantCode(t *testing.T, what string, r ledger.Result, code ledgerv1.Code) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: got %v (%s), want %v", what, r.Code, r.Reason, code)
	}
}

// apply1 applies one transaction in its own block.
func apply1(t *testing.T, s *ledger.Store, tx []byte) ledger.Result {
	t.Helper()
	return applyBlock(t, s, tx)[0]
}

// A whole training, with every rule played by a transaction that breaks it.
func TestTrainingRules(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	tf := newTrainingFixture("fl-1", 4)
	c := ledgerv1.Code_CODE_OK

	// Start: shape rules, then a valid start, then a second one.
	wantCode(t, "threshold 1", apply1(t, s, tf.start(func(st *ledgerv1.TrainingStart) { st.Threshold = 1 })), ledgerv1.Code_CODE_INVALID_FIELD)
	wantCode(t, "min updates 1", apply1(t, s, tf.start(func(st *ledgerv1.TrainingStart) { st.MinUpdates = 1 })), ledgerv1.Code_CODE_INVALID_FIELD)
	wantCode(t, "owner twice", apply1(t, s, tf.start(func(st *ledgerv1.TrainingStart) { st.OwnerKeys[1] = st.OwnerKeys[0] })), ledgerv1.Code_CODE_INVALID_FIELD)
	wantCode(t, "coordinator is an owner", apply1(t, s, tf.start(func(st *ledgerv1.TrainingStart) {
		st.OwnerKeys[2] = tf.coordinator.Public().(ed25519.PublicKey)
	})), ledgerv1.Code_CODE_INVALID_FIELD)
	wantCode(t, "start", apply1(t, s, tf.start()), c)
	wantCode(t, "start again", apply1(t, s, tf.start(func(st *ledgerv1.TrainingStart) { st.Config = "again" })), ledgerv1.Code_CODE_TRAINING_EXISTS)

	// Datasets: only owners, once each, before the key.
	wantCode(t, "key before datasets", apply1(t, s, tf.keyTx()), ledgerv1.Code_CODE_TRAINING_PHASE)
	outsider := tf.f.Sign(tf.coordinator, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_DatasetCommitment{DatasetCommitment: &ledgerv1.DatasetCommitment{
		TrainingId: tf.id, MerkleRoot: d32("x"), NumSamples: 5, KemKey: d32("y")}}})
	wantCode(t, "dataset from a non-owner", apply1(t, s, outsider), ledgerv1.Code_CODE_UNAUTHORIZED)
	for o := range 4 {
		wantCode(t, fmt.Sprint("dataset ", o), apply1(t, s, tf.dataset(o)), c)
	}
	again := tf.f.Sign(tf.owners[1], &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_DatasetCommitment{DatasetCommitment: &ledgerv1.DatasetCommitment{
		TrainingId: tf.id, MerkleRoot: d32("other root"), NumSamples: 5, KemKey: d32("y")}}})
	wantCode(t, "second dataset of owner 1", apply1(t, s, again), ledgerv1.Code_CODE_DATASET_EXISTS)
	wantCode(t, "update before the key", apply1(t, s, tf.update(0, 1)), ledgerv1.Code_CODE_TRAINING_PHASE)
	notCoordinator := tf.f.Sign(tf.owners[0], &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingKey{TrainingKey: &ledgerv1.TrainingKey{TrainingId: tf.id, KeyDigest: tf.key}}})
	wantCode(t, "key from an owner", apply1(t, s, notCoordinator), ledgerv1.Code_CODE_UNAUTHORIZED)
	wantCode(t, "key", apply1(t, s, tf.keyTx()), c)
	wantCode(t, "dataset after the key", apply1(t, s, again), ledgerv1.Code_CODE_TRAINING_PHASE)

	// Round 1: updates, with every wrong one refused.
	wantCode(t, "update for round 2", apply1(t, s, tf.update(0, 2)), ledgerv1.Code_CODE_ROUND_MISMATCH)
	wantCode(t, "update under another key", apply1(t, s, tf.update(0, 1, func(u *ledgerv1.TrainingUpdate) { u.KeyDigest = d32("other key") })), ledgerv1.Code_CODE_KEY_MISMATCH)
	wantCode(t, "update from a stale model", apply1(t, s, tf.update(0, 1, func(u *ledgerv1.TrainingUpdate) { u.BaseModelDigest = d32("old") })), ledgerv1.Code_CODE_STALE_MODEL)
	round1 := [][]byte{tf.update(0, 1), tf.update(1, 1), tf.update(2, 1)}
	for o, u := range round1 {
		wantCode(t, fmt.Sprint("update ", o), apply1(t, s, u), c)
	}
	wantCode(t, "second update of owner 0", apply1(t, s, tf.update(0, 1, func(u *ledgerv1.TrainingUpdate) { u.UpdateDigest = d32("another") })), ledgerv1.Code_CODE_DUPLICATE_UPDATE)
	wantCode(t, "aggregate of 2", apply1(t, s, tf.aggregate(1, 0, 1)), ledgerv1.Code_CODE_TOO_FEW_UPDATES)
	wantCode(t, "aggregate naming owner 3", apply1(t, s, tf.aggregate(1, 0, 1, 3)), ledgerv1.Code_CODE_MISSING_UPDATE)
	wantCode(t, "result before the aggregate", apply1(t, s, tf.result(1, 0, 1, 2)), ledgerv1.Code_CODE_NO_AGGREGATE)
	tf.models = tf.models[:1]
	wantCode(t, "aggregate", apply1(t, s, tf.aggregate(1, 0, 1, 2)), c)
	wantCode(t, "second aggregate", apply1(t, s, tf.aggregate(1, 0, 1, 2, 3)), ledgerv1.Code_CODE_DUPLICATE_AGGREGATE)
	wantCode(t, "late update of owner 3", apply1(t, s, tf.update(3, 1)), ledgerv1.Code_CODE_TRAINING_PHASE)
	wantCode(t, "result decrypted by 2", apply1(t, s, tf.result(1, 0, 2)), ledgerv1.Code_CODE_TOO_FEW_DECRYPTORS)
	tf.models = tf.models[:1]
	wantCode(t, "result", apply1(t, s, tf.result(1, 0, 1, 3)), c)

	// Round 2: an update trained from round 0's model, or round 1's update
	// digest again, is refused.
	wantCode(t, "round-1 update replayed in round 2", apply1(t, s, tf.update(0, 2, func(u *ledgerv1.TrainingUpdate) { u.UpdateDigest = updateDigest(tf.id, 1, 0) })),
		ledgerv1.Code_CODE_REPLAYED_UPDATE)
	wantCode(t, "update from round 0's model", apply1(t, s, tf.update(1, 2, func(u *ledgerv1.TrainingUpdate) { u.BaseModelDigest = tf.models[0] })), ledgerv1.Code_CODE_STALE_MODEL)
	wantCode(t, "round-1 transaction replayed", apply1(t, s, round1[0]), ledgerv1.Code_CODE_DUPLICATE_TX)
	mustOK(t, applyBlock(t, s, tf.update(0, 2), tf.update(1, 2), tf.update(2, 2), tf.update(3, 2), tf.aggregate(2, 0, 1, 2, 3), tf.result(2, 0, 1, 2, 3)))

	rec, err := s.Training(ctx, tf.id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.RoundsDone != 2 || !bytes.Equal(rec.ModelCommitment, commitmentOf(tf.id, 2)) || len(rec.Datasets) != 4 || !slices.IsSorted(rec.TxIndexes) {
		t.Fatalf("training record after 2 rounds: %v", rec)
	}
	r1, err := s.TrainingRound(ctx, tf.id, 1)
	if err != nil || len(r1.Updates) != 3 || !slices.Equal(r1.AggregateOwners, []uint32{0, 1, 2}) || !slices.Equal(r1.Decryptors, []uint32{0, 1, 3}) {
		t.Fatalf("round 1: %v %v", r1, err)
	}
	if _, err := s.TrainingRound(ctx, tf.id, 9); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("round 9: %v", err)
	}

	// Linking: the model must exist, be the owner's, commit to the last
	// round's model; shares one per owner summing to 10000.
	wantCode(t, "link to an unknown model", apply1(t, s, tf.link(tf.coordinator, "fl-model", 2500, 2500, 2500, 2500)), ledgerv1.Code_CODE_UNKNOWN_MODEL)
	mustOK(t, applyBlock(t, s, tf.register("fl-model", commitmentOf(tf.id, 2)), tf.register("round-1-model", commitmentOf(tf.id, 1))))
	wantCode(t, "link by another key", apply1(t, s, tf.link(tf.owners[0], "fl-model", 2500, 2500, 2500, 2500)), ledgerv1.Code_CODE_UNAUTHORIZED)
	wantCode(t, "shares summing to 9999", apply1(t, s, tf.link(tf.coordinator, "fl-model", 2500, 2500, 2500, 2499)), ledgerv1.Code_CODE_BAD_SHARES)
	wantCode(t, "three shares", apply1(t, s, tf.link(tf.coordinator, "fl-model", 5000, 2500, 2500)), ledgerv1.Code_CODE_BAD_SHARES)
	wantCode(t, "a model of an earlier round", apply1(t, s, tf.link(tf.coordinator, "round-1-model", 2500, 2500, 2500, 2500)), ledgerv1.Code_CODE_MODEL_MISMATCH)
	wantCode(t, "link", apply1(t, s, tf.link(tf.coordinator, "fl-model", 4000, 3000, 2000, 1000)), c)
	wantCode(t, "link twice", apply1(t, s, tf.link(tf.coordinator, "fl-model", 2500, 2500, 2500, 2500)), ledgerv1.Code_CODE_ALREADY_LINKED)
	wantCode(t, "update after the link", apply1(t, s, tf.update(0, 3)), ledgerv1.Code_CODE_TRAINING_PHASE)
	link, err := s.ModelTraining(ctx, "fl-model")
	if err != nil || link.TrainingId != tf.id || !slices.Equal(link.ShareBp, []uint32{4000, 3000, 2000, 1000}) || len(link.OwnerKeys) != 4 {
		t.Fatalf("link: %v %v", link, err)
	}
	if _, err := s.ModelTraining(ctx, "round-1-model"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unlinked model: %v", err)
	}
	// Every transaction of the training is in the record, in log order,
	// and each is in the log with an inclusion proof.
	rec, _ = s.Training(ctx, tf.id)
	if len(rec.TxIndexes) != 1+4+1+3+1+1+6+1 {
		t.Fatalf("%d transactions recorded: %v", len(rec.TxIndexes), rec.TxIndexes)
	}
	for _, i := range rec.TxIndexes {
		e, err := s.Entry(ctx, i)
		if err != nil || ledger.VerifyInclusion(e, s.PublicKey()) != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if kind, _ := ledger.Describe(e.Tx); kind == "unknown" || kind == "RegisterModel" {
			t.Fatalf("entry %d of the training is a %s", i, kind)
		}
	}
}

// Random sequences of training transactions, valid and invalid, generated
// against the live state, keep the invariants: rounds advance one at a
// time, an aggregate sums at least min_updates recorded updates of its
// round, a result follows its aggregate, every update digest is used once,
// and the same blocks applied to a fresh store give the same codes and the
// same app hash.
func TestTrainingInvariantsUnderRandomSequences(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		tf := newTrainingFixture(fmt.Sprint("rand-", seed), 4)
		s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
		var blocks [][][]byte
		var codes []ledgerv1.Code
		apply := func(txs ...[]byte) {
			blocks = append(blocks, txs)
			for _, r := range applyBlock(t, s, txs...) {
				codes = append(codes, r.Code)
			}
		}
		apply(tf.start())
		apply(tf.dataset(0), tf.dataset(1), tf.dataset(2), tf.dataset(3))
		apply(tf.keyTx())
		var digests [][]byte
		for range 150 {
			rec, err := s.Training(ctx, tf.id)
			if err != nil {
				t.Fatal(err)
			}
			round := rec.RoundsDone + 1
			if rng.IntN(8) == 0 {
				round = uint32(rng.IntN(int(round) + 2))
			}
			switch rng.IntN(7) {
			case 0, 1, 2:
				d := d32(fmt.Sprint(seed, rng.Uint64()))
				if len(digests) > 0 && rng.IntN(6) == 0 {
					d = digests[rng.IntN(len(digests))] // a replay
				}
				digests = append(digests, d)
				base := rec.ModelDigest
				if rng.IntN(6) == 0 {
					base = tf.models[0]
				}
				apply(tf.update(rng.IntN(4), round, func(u *ledgerv1.TrainingUpdate) { u.UpdateDigest, u.BaseModelDigest = d, base }))
			case 3, 4:
				var owners []uint32
				for o := range uint32(4) {
					if rng.IntN(4) > 0 {
						owners = append(owners, o)
					}
				}
				if len(owners) > 0 {
					apply(tf.aggregate(round, owners...))
				}
			case 5:
				var dec []uint32
				for o := range uint32(4) {
					if rng.IntN(5) > 0 {
						dec = append(dec, o)
					}
				}
				if len(dec) > 0 {
					apply(tf.result(round, dec...))
				}
			case 6:
				apply(tf.dataset(rng.IntN(4)), tf.keyTx())
			}
		}
		rec, err := s.Training(ctx, tf.id)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for r := uint32(1); r <= rec.RoundsDone+1; r++ {
			rnd, err := s.TrainingRound(ctx, tf.id, r)
			if errors.Is(err, ledger.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range rnd.Updates {
				if seen[string(u.UpdateDigest)] {
					t.Fatalf("seed %d: update digest used twice", seed)
				}
				seen[string(u.UpdateDigest)] = true
			}
			if len(rnd.AggregateDigest) != 0 {
				if len(rnd.AggregateOwners) < int(rec.Start.MinUpdates) {
					t.Fatalf("seed %d round %d: aggregate of %d", seed, r, len(rnd.AggregateOwners))
				}
				for _, o := range rnd.AggregateOwners {
					if !slices.ContainsFunc(rnd.Updates, func(u *ledgerv1.TrainingUpdateRecord) bool { return u.Owner == o }) {
						t.Fatalf("seed %d round %d: aggregate names owner %d without an update", seed, r, o)
					}
				}
			}
			if (len(rnd.ModelDigest) != 0) != (r <= rec.RoundsDone) {
				t.Fatalf("seed %d round %d: result present = %v with %d rounds done", seed, r, len(rnd.ModelDigest) != 0, rec.RoundsDone)
			}
			if len(rnd.ModelDigest) != 0 && (len(rnd.AggregateDigest) == 0 || len(rnd.Decryptors) < int(rec.Start.Threshold)) {
				t.Fatalf("seed %d round %d: result without aggregate or with too few decryptors", seed, r)
			}
		}
		accepted := 0
		for _, c := range codes {
			if c == ledgerv1.Code_CODE_OK {
				accepted++
			}
		}
		if len(rec.TxIndexes) != accepted {
			t.Fatalf("seed %d: %d accepted transactions, %d in the training record", seed, accepted, len(rec.TxIndexes))
		}
		_, _, app1, _ := s.Head()
		s.Close()
		// Replay on a fresh store.
		s2 := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
		var codes2 []ledgerv1.Code
		for _, b := range blocks {
			for _, r := range applyBlock(t, s2, b...) {
				codes2 = append(codes2, r.Code)
			}
		}
		_, _, app2, _ := s2.Head()
		s2.Close()
		if !slices.Equal(codes, codes2) || !bytes.Equal(app1, app2) {
			t.Fatalf("seed %d: replaying the blocks gives other codes or another app hash", seed)
		}
		if rec.RoundsDone < 2 {
			t.Fatalf("seed %d: only %d rounds completed; the generator does not reach the later rules", seed, rec.RoundsDone)
		}
		t.Logf("seed %d: %d transactions, %d accepted, %d rounds done", seed, len(codes), accepted, rec.RoundsDone)
	}
}

// Decoding and checking mutated training transactions never panics, and
// what decodes re-encodes to the same signed body.
func FuzzTrainingTx(f *testing.F) {
	tf := newTrainingFixture("fuzz", 4)
	for _, tx := range [][]byte{tf.start(), tf.dataset(0), tf.keyTx(), tf.update(1, 1), tf.aggregate(1, 0, 1, 2), tf.result(1, 0, 1, 2),
		tf.link(tf.coordinator, "m", 2500, 2500, 2500, 2500)} {
		f.Add(tx)
	}
	s, err := ledger.Open(filepath.Join(f.TempDir(), "ledger.db"), ledger.Options{ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, rj := ledger.DecodeTx(chain, raw)
		if rj != nil {
			return
		}
		if !bytes.Equal(tx.Raw, raw) {
			t.Fatal("decoded transaction does not keep its bytes")
		}
		_ = s.Check(raw) // the stateful rules never panic either
	})
}

// A model linked to a federated training pays its data owners a royalty
// out of every payment, split by their recorded shares; the provider keeps
// the rest (and what rounding leaves), and the supply is conserved.
func TestFederatedModelPaysItsDataOwners(t *testing.T) {
	tf := newTrainingFixture("fl-pay", 4)
	extra := []ed25519.PublicKey{tf.coordinator.Public().(ed25519.PublicKey)}
	for _, o := range tf.owners {
		extra = append(extra, o.Public().(ed25519.PublicKey))
	}
	p := tf.f.FundedParams(4, 10_000, extra...)
	p.Market.TrainingRoyaltyBps = 2000
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"), func(o *ledger.Options) { o.Params, o.Disputes = p, ledgertest.FakeDisputes{} })
	defer s.Close()
	txs := [][]byte{tf.start()}
	for o := range 4 {
		txs = append(txs, tf.dataset(o))
	}
	txs = append(txs, tf.keyTx(), tf.update(0, 1), tf.update(1, 1), tf.update(2, 1))
	mustOK(t, applyBlock(t, s, txs...))
	mustOK(t, applyBlock(t, s, tf.aggregate(1, 0, 1, 2)))
	mustOK(t, applyBlock(t, s, tf.result(1, 0, 1, 3)))
	shares := []uint32{1000, 2000, 3000, 4000}
	mustOK(t, applyBlock(t, s, tf.register("fl", commitmentOf(tf.id, 1)), tf.link(tf.coordinator, "fl", shares...)))
	mustOK(t, applyBlock(t, s, tf.f.Offer("fl", 1000, 3000, 5)))
	r := tf.f.NewRequest("fl", "r1", 3)
	r.Price = 1000
	mustOK(t, applyBlock(t, s, tf.f.Receipt(r), tf.f.Reveal(r)))
	tf.f.Commitment = commitmentOf(tf.id, 1) // what the registered model commits to
	mustOK(t, applyBlock(t, s, tf.f.Proof([]*ledgertest.Request{r}, false)))
	ctx := context.Background()
	bal := func(k ed25519.PrivateKey) uint64 {
		a, err := s.Account(ctx, k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance
	}
	before := make([]uint64, 4)
	for i, o := range tf.owners {
		before[i] = bal(o)
	}
	provider0 := bal(tf.f.Server)
	mustOK(t, applyBlock(t, s, tf.f.Verdict("r1", true))) // pays at once
	// 1000 - 10% to the pool = 900; 20% of it = 180 to the owners.
	paid := uint64(0)
	for i, o := range tf.owners {
		want := 180 * uint64(shares[i]) / 10000
		if got := bal(o) - before[i]; got != want {
			t.Errorf("owner %d (share %d bp) got %d, want %d", i, shares[i], got, want)
		}
		paid += want
	}
	if got := bal(tf.f.Server) - provider0; got != 900-paid {
		t.Errorf("provider got %d, want %d", got, 900-paid)
	}
	if a, err := s.AuditSupply(); err != nil || a.Accounted() != a.Genesis {
		t.Fatalf("supply after the royalty: %+v %v", a, err)
	}
}
