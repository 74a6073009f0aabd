package federated

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	federatedv1 "github.com/veil-project/veil/api/veil/federated/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model/training"
)

const testChain = "federated-test"

var mnistTest = sync.OnceValues(func() (*dataset.Set, error) {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	return dataset.LoadTest(dir)
})

// testData is 4 non-IID shards of ~300 images and a validation set of 400.
func testData(t *testing.T) ([]*dataset.Set, *dataset.Set) {
	t.Helper()
	all, err := mnistTest()
	if err != nil {
		t.Fatal(err)
	}
	pool := &dataset.Set{Images: all.Images[:1200], Labels: all.Labels[:1200]}
	shards, err := Split(pool, SplitConfig{Owners: 4, NonIID: true, Majority: 0.9, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return shards, &dataset.Set{Images: all.Images[1200:1600], Labels: all.Labels[1200:1600]}
}

func testConfig(id string) Config {
	c := DefaultConfig(id)
	c.Rounds, c.LocalSteps, c.BatchSize, c.Augment = 2, 4, 16, false
	// Long enough for a loaded machine or the race detector; the dropout
	// tests wait for one of them.
	c.UpdateTimeout, c.ShareTimeout = 10*time.Second, 10*time.Second
	return c
}

func openLedger(t *testing.T) *embedded.Node {
	t.Helper()
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "ledger.db"), ChainID: testChain,
		Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("federated node")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func newSession(t *testing.T, id string, node ledger.TrainingAPI) *Session {
	t.Helper()
	shards, val := testData(t)
	keys := make([]ed25519.PrivateKey, 4)
	for i := range keys {
		keys[i] = ledgertest.Key(fmt.Sprintf("%s owner %d", id, i))
	}
	return &Session{Config: testConfig(id), Ledger: node, ChainID: testChain, Coordinator: ledgertest.Key(id + " coordinator"),
		OwnerKeys: keys, Shards: shards, Validation: val, HE: he.DefaultAggregationParameters, ModelName: id}
}

// An honest training: every owner ends with the coordinator's model, the
// ledger holds every round, and the encrypted aggregate gave the same model
// as the plaintext computation from the owners' own updates (checked by
// each owner against the recorded digest, and here against FedAvg in the
// clear).
func TestHonestTraining(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-honest", node)
	s.Config.Rounds, s.Config.LocalSteps = 3, 15
	res, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range res.OwnerErrors {
		if e != nil {
			t.Fatalf("owner %d: %v", i, e)
		}
	}
	want := ModelDigest(res.Model)
	for i, o := range res.Owners {
		if ModelDigest(o.Model()) != want {
			t.Fatalf("owner %d ends with another model", i)
		}
	}
	rec, err := node.Training(context.Background(), "fl-honest")
	if err != nil {
		t.Fatal(err)
	}
	if rec.RoundsDone != 3 || !equal32(rec.ModelDigest, want) || !bytes.Equal(rec.ModelCommitment, res.Commitment[:]) {
		t.Fatalf("ledger record: %d rounds, digest %x", rec.RoundsDone, rec.ModelDigest)
	}
	for _, r := range res.Rounds {
		if len(r.Updates) != 4 || r.Subsets != 4 || len(r.Owners) != 4 {
			t.Fatalf("round %d: %d updates, %d subsets checked, %d owner reports", r.Round, len(r.Updates), r.Subsets, len(r.Owners))
		}
		for _, o := range r.Owners {
			if o.BytesSent < 1<<20 || o.BytesReceived < 1<<20 {
				t.Fatalf("round %d: owner sent %d and received %d bytes: traffic not counted", r.Round, o.BytesSent, o.BytesReceived)
			}
		}
		t.Logf("round %d: %.2f s, HE overhead %.3f s, owner 0 sent %d B received %d B", r.Round, r.Seconds, r.HEOverheadSeconds, r.Owners[0].BytesSent, r.Owners[0].BytesReceived)
	}
	acc := training.FixedAccuracy(res.Fixed, s.Validation)
	t.Logf("validation accuracy after 3 rounds of 15 steps: %.3f", acc)
	if acc < 0.35 {
		t.Fatalf("validation accuracy %.3f: the model did not learn", acc)
	}
}

// The encrypted protocol computes FedAvg (with SCAFFOLD) exactly: replaying
// the owners' local training in the clear from the same seeds gives the
// same model within the CKKS precision.
func TestEncryptedRoundMatchesPlaintextFedAvg(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-plain", node)
	s.Config.Rounds = 1
	res, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	init, err := InitialModel(s.Config.Seed)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, sh := range s.Shards {
		total += float64(sh.Len())
	}
	sum := make([]float64, NumParams(init))
	for i, sh := range s.Shards {
		var st training.AdamState
		next, err := training.Train(context.Background(), sh, s.Config.trainConfig(i, 1, init, &st, &training.Control{}))
		if err != nil {
			t.Fatal(err)
		}
		a, b := Flatten(init), Flatten(next)
		for k := range sum {
			sum[k] += float64(sh.Len()) / total * (b[k] - a[k])
		}
	}
	got, want := Flatten(res.Model), Flatten(init)
	var maxErr float64
	for k := range want {
		want[k] += sum[k]
		maxErr = max(maxErr, abs(got[k]-want[k]))
	}
	t.Logf("max |encrypted FedAvg - plaintext FedAvg| = %.3g", maxErr)
	if maxErr > 1.0/(1<<13) {
		t.Fatalf("the encrypted round differs from plaintext FedAvg by %.3g", maxErr)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// One owner drops before its update in round 2: the round aggregates the
// other three and they decrypt it (t = 3).
func TestOwnerDropsBeforeUpdate(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-drop-before", node)
	s.Faults = map[int]Faults{3: {StopBeforeUpdate: 2}}
	res, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res.OwnerErrors[3], errStopped) {
		t.Fatalf("owner 3: %v", res.OwnerErrors[3])
	}
	r2 := res.Rounds[1]
	if fmt.Sprint(r2.Updates) != "[0 1 2]" || fmt.Sprint(r2.Decryptors) != "[0 1 2]" || r2.Subsets != 1 {
		t.Fatalf("round 2: updates %v, decryptors %v, %d subsets", r2.Updates, r2.Decryptors, r2.Subsets)
	}
}

// One owner sends its update and vanishes before decrypting: its update is
// in the aggregate, and the 3 others decrypt it without it (t-of-N).
func TestOwnerDropsMidRound(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-drop-mid", node)
	s.Faults = map[int]Faults{1: {StopAfterUpdate: 1}}
	s.Config.Rounds = 1
	res, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r1 := res.Rounds[0]
	if fmt.Sprint(r1.Updates) != "[0 1 2 3]" || fmt.Sprint(r1.Decryptors) != "[0 2 3]" || r1.Subsets != 1 {
		t.Fatalf("round 1: updates %v, decryptors %v, %d subsets", r1.Updates, r1.Decryptors, r1.Subsets)
	}
	for _, i := range []int{0, 2, 3} {
		if res.OwnerErrors[i] != nil || ModelDigest(res.Owners[i].Model()) != ModelDigest(res.Model) {
			t.Fatalf("owner %d: %v", i, res.OwnerErrors[i])
		}
	}
}

// An owner sends wrong decryption shares: the t-subsets disagree, the round
// is refused by the coordinator and by every owner, and nothing is recorded.
func TestWrongDecryptionShareIsDetected(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-bad-share", node)
	s.Faults = map[int]Faults{2: {BadShares: 1}}
	_, err := s.Run(context.Background())
	if err == nil || !errors.Is(err, errCheck) || !strings.Contains(err.Error(), "a decryption share is wrong") {
		t.Fatalf("training with a wrong share: %v", err)
	}
	rnd, err := node.TrainingRound(context.Background(), "fl-bad-share", 1)
	if err != nil || len(rnd.ModelDigest) != 0 || len(rnd.AggregateDigest) == 0 {
		t.Fatalf("round 1 after the wrong share: %v %v", rnd, err)
	}
}

// With one owner missing there is a single subset; a wrong share is then
// caught by the weight and check slots.
func TestWrongShareWithoutRedundancyIsCaughtByChecks(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-bad-share-3", node)
	s.Config.Rounds = 1
	s.Faults = map[int]Faults{3: {StopBeforeUpdate: 1}, 0: {BadShares: 1}}
	_, err := s.Run(context.Background())
	if err == nil || !errors.Is(err, errCheck) || !strings.Contains(err.Error(), "slot") {
		t.Fatalf("a wrong share with one subset: %v", err)
	}
}

// Bad updates are refused with a clear status, and the round goes on
// with the other owners.
func TestBadUpdatesAreRefused(t *testing.T) {
	other, err := he.NewAggregationContext(he.DefaultAggregationParameters)
	if err != nil {
		t.Fatal(err)
	}
	foreign := foreignUpdate(t, other)
	var round1 []byte
	cases := []struct {
		name   string
		faults Faults
		code   codes.Code
		want   string
	}{
		{"truncated", Faults{TamperUpdate: func(r int, w []byte) []byte {
			if r == 1 {
				return w[:len(w)-100]
			}
			return w
		}}, codes.InvalidArgument, "bytes of coefficients"},
		{"wrong size", Faults{TamperUpdate: func(r int, w []byte) []byte {
			if r == 1 { // the owner's own update cut to 3 pieces, header fixed up
				const header, piece = 57, 2 * 61440
				short := append([]byte(nil), w[:header+3*piece]...)
				short[46], short[47] = 3, 0
				return short
			}
			return w
		}}, codes.InvalidArgument, "3 pieces, want 8"},
		{"under another key", Faults{TamperUpdate: func(r int, w []byte) []byte {
			if r == 1 {
				return foreign.full
			}
			return w
		}}, codes.InvalidArgument, "another key"},
		{"altered after recording", Faults{TamperSubmit: func(r int, u *federatedv1.Update) {
			if r == 1 {
				u.Ciphertext = append([]byte(nil), u.Ciphertext...)
				u.Ciphertext[100] ^= 1
			}
		}}, codes.InvalidArgument, "not the one owner 0 recorded"},
		{"replayed from round 1", Faults{TamperSubmit: func(r int, u *federatedv1.Update) {
			if r == 1 {
				round1 = u.Ciphertext
			} else {
				u.Ciphertext = round1
			}
		}}, codes.InvalidArgument, "a replay or an altered update"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := openLedger(t)
			s := newSession(t, "fl-bad-"+strings.ReplaceAll(tc.name, " ", "-"), node)
			s.Faults = map[int]Faults{0: tc.faults}
			res, err := s.Run(context.Background())
			if err != nil {
				t.Fatalf("the training did not survive: %v", err)
			}
			oe := res.OwnerErrors[0]
			var st interface{ GRPCStatus() *status.Status }
			if !errors.As(oe, &st) || st.GRPCStatus().Code() != tc.code || !strings.Contains(oe.Error(), tc.want) {
				t.Fatalf("owner 0: %v, want %v mentioning %q", oe, tc.code, tc.want)
			}
			if last := res.Rounds[len(res.Rounds)-1]; fmt.Sprint(last.Updates) != "[1 2 3]" {
				t.Fatalf("the round went on with %v", last.Updates)
			}
		})
	}
}

type foreignUpdates struct{ full []byte }

// foreignUpdate encrypts an update under a key of other owners.
func foreignUpdate(t *testing.T, c *he.AggregationContext) foreignUpdates {
	t.Helper()
	p, _ := c.NewParty(1)
	crs := bytes.Repeat([]byte{7}, he.CRSBytes)
	s, _ := p.PublicKeyShare(crs)
	k, err := c.CollectivePublicKey(crs, []*he.PublicKeyShare{s})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := k.Encrypt(make([]float64, 8*c.Slots()))
	a, _ := full.MarshalBinary()
	return foreignUpdates{a}
}

// A replayed update caught by the ledger: the owner records, in round 2,
// the digest of its round-1 update.
func TestReplayedUpdateDigestIsRefusedByTheLedger(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-replay-ledger", node)
	var first []byte
	s.Faults = map[int]Faults{2: {TamperUpdate: func(r int, w []byte) []byte {
		if r == 1 {
			first = w
			return w
		}
		return first
	}}}
	res, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rj *ledger.Rejection
	if !errors.As(res.OwnerErrors[2], &rj) || rj.Code != ledgerv1.Code_CODE_REPLAYED_UPDATE {
		t.Fatalf("owner 2: %v", res.OwnerErrors[2])
	}
}

// A coordinator that tries to have the owners decrypt less than the
// recorded aggregate (here: a single owner's update) is refused by every
// owner: each recomputes the sum from the recorded updates.
func TestOwnersRefuseToDecryptAnythingButTheRecordedSum(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-liar", node)
	s.Config.Rounds = 1
	s.Service = func(c *Coordinator) federatedv1.AggregatorServer { return &singleUpdateCoordinator{c} }
	res, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no 3 owners") {
		t.Fatalf("coordinator run: %v", err)
	}
	for i, e := range res.OwnerErrors {
		if e == nil || !strings.Contains(e.Error(), "the recorded aggregate sums [0 1 2 3]") {
			t.Fatalf("owner %d: %v", i, e)
		}
	}
}

// A coordinator that records an aggregate digest that is not the sum of
// the recorded updates (say, of one update) gets no share either.
func TestOwnersRefuseAnAggregateThatIsNotTheSum(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-liar-ledger", node)
	s.Config.Rounds = 1
	s.CoordinatorLedger = &lyingLedger{TrainingAPI: node, key: s.Coordinator}
	res, err := s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no 3 owners") {
		t.Fatalf("coordinator run: %v", err)
	}
	for i, e := range res.OwnerErrors {
		if e == nil || !strings.Contains(e.Error(), "not the sum of the recorded updates: refusing to decrypt it") {
			t.Fatalf("owner %d: %v", i, e)
		}
	}
}

// lyingLedger lets the coordinator record something else than what it
// computed: by default, for every aggregate, the digest of owner 0's
// update; or whatever edit does to a transaction body.
type lyingLedger struct {
	ledger.TrainingAPI
	key  ed25519.PrivateKey
	edit func(*ledgerv1.TxBody)
}

func (l *lyingLedger) Submit(ctx context.Context, raw []byte) (*ledgerv1.SubmitResponse, error) {
	tx, rj := ledger.DecodeTx(testChain, raw)
	if rj != nil {
		return nil, rj
	}
	switch a := tx.Body.GetTrainingAggregate(); {
	case l.edit != nil:
		l.edit(tx.Body)
	case a != nil:
		rnd, err := l.TrainingAPI.TrainingRound(ctx, a.TrainingId, a.Round)
		if err != nil {
			return nil, err
		}
		a.AggregateDigest = updateDigestOf(rnd, 0)
	}
	raw, err := ledger.SignTx(l.key, tx.Body)
	if err != nil {
		return nil, err
	}
	return l.TrainingAPI.Submit(ctx, raw)
}

// A coordinator that records another collective key, or another model
// than the one decrypted, is caught by every owner.
func TestOwnersCatchARecordedKeyOrModelThatIsNotTheirs(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ledgerv1.TxBody)
		want string
	}{
		{"key", func(b *ledgerv1.TxBody) {
			if k := b.GetTrainingKey(); k != nil {
				k.KeyDigest = bytes.Repeat([]byte{9}, 32)
			}
		}, "the owners' shares make"},
		{"model", func(b *ledgerv1.TxBody) {
			if r := b.GetTrainingRoundResult(); r != nil {
				r.ModelDigest = bytes.Repeat([]byte{7}, 32)
			}
		}, "the decrypted aggregate gives"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := openLedger(t)
			s := newSession(t, "fl-liar-"+tc.name, node)
			s.Config.Rounds = 2
			s.Config.UpdateTimeout, s.Config.ShareTimeout = 3*time.Second, 3*time.Second
			s.CoordinatorLedger = &lyingLedger{TrainingAPI: node, key: s.Coordinator, edit: tc.edit}
			res, _ := s.Run(context.Background())
			for i, e := range res.OwnerErrors {
				if e == nil || !strings.Contains(e.Error(), tc.want) {
					t.Fatalf("owner %d: %v, want an error mentioning %q", i, e, tc.want)
				}
			}
		})
	}
}

// singleUpdateCoordinator streams only owner 0's update as "the aggregate".
type singleUpdateCoordinator struct{ *Coordinator }

func (c *singleUpdateCoordinator) GetAggregate(req *federatedv1.RoundRequest, stream federatedv1.Aggregator_GetAggregateServer) error {
	return c.Coordinator.GetAggregate(req, &firstOnly{Aggregator_GetAggregateServer: stream})
}

type firstOnly struct {
	federatedv1.Aggregator_GetAggregateServer
	sent bool
}

func (f *firstOnly) Send(u *federatedv1.Update) error {
	if f.sent {
		return nil
	}
	f.sent = true
	return f.Aggregator_GetAggregateServer.Send(u)
}

// A verifier traces the registered model to its rounds and datasets from
// the ledger alone; an owner proves a sample in (and another not in) its
// committed dataset; a node that hides a transaction of the training
// makes the trace fail.
func TestTraceServedModel(t *testing.T) {
	ctx := context.Background()
	node := openLedger(t)
	s := newSession(t, "fl-trace", node)
	res, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader := func(api ledger.API, key ed25519.PublicKey) *trust.Reader {
		return &trust.Reader{API: api, Anchor: trust.Anchor{ChainID: testChain, NodeKey: key}}
	}
	if _, err := TraceModel(ctx, reader(node, node.PublicKey()), "fl-trace"); !errors.Is(err, ErrUntraced) {
		t.Fatalf("trace before the link: %v", err)
	}
	spec := ledgertest.FakeSpec(10)
	reg, err := ledger.Signer{ChainID: testChain, Key: s.Coordinator}.RegisterModel(&ledgerv1.RegisterModel{
		ModelId: "fl-trace", Architecture: "784-32-128-sq-10", Commitment: res.Commitment[:], VerifyingKey: ledgertest.FakeVK(spec, 3),
		OutputsPerChallenge: 10, Spec: spec, ProofBatch: 3}, s.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Submit(ctx, reg); err != nil {
		t.Fatal(err)
	}
	if err := linkModel(ctx, node, testChain, s.Coordinator, "fl-trace", "fl-trace", []uint32{4000, 3000, 2000, 1000}, "test", nil, 0); err != nil {
		t.Fatal(err)
	}
	tr, err := TraceModel(ctx, reader(node, node.PublicKey()), "fl-trace")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.OK() || len(tr.Rounds) != 2 || len(tr.Owners) != 4 || tr.Owners[0].ShareBp != 4000 {
		t.Fatalf("trace: %+v", tr)
	}
	for _, c := range tr.Checks {
		t.Logf("%v %s %s", c.OK, c.Name, c.Detail)
	}
	// Sample proofs against the traced roots.
	in := &s.Shards[0].Images[3]
	p, err := res.Owners[0].Tree().Prove(in, s.Shards[0].Labels[3])
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := tr.VerifySampleInModel(0, in, s.Shards[0].Labels[3], p); err != nil || !ok {
		t.Fatalf("owner 0's own sample: %v %v", ok, err)
	}
	out := &s.Shards[1].Images[0]
	p, err = res.Owners[0].Tree().Prove(out, s.Shards[1].Labels[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := tr.VerifySampleInModel(0, out, s.Shards[1].Labels[0], p); err != nil || ok {
		t.Fatalf("a sample of owner 1 in owner 0's dataset: %v %v", ok, err)
	}
	if ok, err := tr.VerifySampleInModel(1, out, s.Shards[1].Labels[0], p); err == nil {
		t.Fatalf("owner 0's proof accepted against owner 1's root: %v", ok)
	}
	// A proof of absence for a present sample is refused.
	p, _ = res.Owners[0].Tree().Prove(in, s.Shards[0].Labels[3])
	p.Present = false
	if _, err := tr.VerifySampleInModel(0, in, s.Shards[0].Labels[3], p); err == nil {
		t.Fatal("a forged proof of absence verified")
	}
	// A node that leaves an update out of the training's index list.
	hiding := &hidingLedger{TrainingAPI: node}
	tr, err = TraceModel(ctx, reader(hiding, node.PublicKey()), "fl-trace")
	if err != nil {
		t.Fatal(err)
	}
	if tr.OK() {
		t.Fatal("a trace with a hidden update passed")
	}
	// Another node key: the head does not verify.
	if _, err = TraceModel(ctx, reader(node, ledgertest.Key("other").Public().(ed25519.PublicKey)), "fl-trace"); err == nil {
		t.Fatal("a trace under another node key passed")
	}
}

// hidingLedger drops the first update from the training's index list.
type hidingLedger struct{ ledger.TrainingAPI }

func (h *hidingLedger) Training(ctx context.Context, id string) (*ledgerv1.TrainingRecord, error) {
	rec, err := h.TrainingAPI.Training(ctx, id)
	if err != nil {
		return nil, err
	}
	rnd, _ := h.TrainingAPI.TrainingRound(ctx, id, 1)
	hide := rnd.Updates[0].Index
	var keep []uint64
	for _, i := range rec.TxIndexes {
		if i != hide {
			keep = append(keep, i)
		}
	}
	rec.TxIndexes = keep
	return rec, nil
}

// With DP-SGD the owners' updates are still aggregated exactly; the
// training runs and states its epsilon.
func TestDPTraining(t *testing.T) {
	node := openLedger(t)
	s := newSession(t, "fl-dp", node)
	s.Config.Rounds = 1
	s.Config.DP = &DPConfig{Clip: 1, NoiseMultiplier: 1.1, Delta: 1e-5}
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	eps, err := s.Config.Epsilon(300)
	if err != nil || !(eps > 0) {
		t.Fatalf("epsilon %g, %v", eps, err)
	}
	more := s.Config
	more.Rounds = 10
	if e10, _ := more.Epsilon(300); !(e10 > eps) {
		t.Fatalf("epsilon after 10 rounds %g, after 1 %g", e10, eps)
	}
}
