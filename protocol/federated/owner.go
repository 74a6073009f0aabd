package federated

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	federatedv1 "github.com/veil-project/veil/api/veil/federated/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/zk"
)

// OwnerConfig configures one data owner.
type OwnerConfig struct {
	Index      int // 0-based; the owner's key must be OwnerKeys[Index] in the TrainingStart
	Key        ed25519.PrivateKey
	TrainingID string
	Shard      *dataset.Set
	Ledger     ledger.TrainingAPI
	ChainID    string
	// Coordinator is the aggregator's service.
	Coordinator federatedv1.AggregatorClient
	HE          he.AggregationParameters
	// Validation is the public validation set; with it the owner checks
	// the last round's Poseidon2 commitment (without it, the digests only).
	Validation *dataset.Set
	Log        *slog.Logger
	// Faults plays a misbehaving or failing owner (tests).
	Faults Faults
}

// Faults are misbehaviours an owner can be told to play, to test that the
// others and the coordinator survive or refuse them.
type Faults struct {
	// StopBeforeUpdate / StopAfterUpdate make the owner vanish in that
	// round before sending its update, or after sending it (before its
	// decryption shares).
	StopBeforeUpdate, StopAfterUpdate int
	// BadShares makes the owner send decryption shares made with a wrong
	// secret in that round (well-formed, for the right aggregate and key).
	BadShares int
	// TamperUpdate, if set, replaces the encrypted update before the owner
	// records its digest on the ledger; TamperSubmit alters the message
	// sent to the coordinator after that.
	TamperUpdate func(round int, wire []byte) []byte
	TamperSubmit func(round int, u *federatedv1.Update)
}

var errFinished = errors.New("finished")

// errStopped is returned by an owner that plays a fault that stops it.
var errStopped = errors.New("owner stopped (fault injected)")

// Owner is a data owner: it trains on its shard, encrypts its update under
// the collective key, checks the aggregate it is asked to decrypt and the
// model that comes out.
type Owner struct {
	cfg   OwnerConfig
	he    *he.AggregationContext
	kem   *ecdh.PrivateKey
	tree  *DatasetTree
	log   *slog.Logger
	party *he.Party
	key   *he.CollectiveKey

	train   Config
	rec     *ledgerv1.TrainingRecord
	weights []float64
	layout  updateLayout
	model   *model.Float
	salt    zk.Salt
	state   training.AdamState
	// SCAFFOLD: the owner's control variate c_i and the global one c, as
	// flat parameter vectors (zero at the start).
	ci, c   []float64
	traffic *Traffic

	mu    sync.Mutex
	stats []OwnerRoundStats
	done  error // set when Run returns
}

// OwnerRoundStats is one owner's view of a round.
type OwnerRoundStats struct {
	Round int `json:"round"`
	// Bytes sent to and received from the coordinator in the round.
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	// Seconds of local training and of HE work (encrypt, check the
	// aggregate, decryption shares, combine).
	TrainSeconds float64 `json:"train_seconds"`
	HESeconds    float64 `json:"he_seconds"`
}

// NewOwner prepares an owner: its X25519 channel key and the commitment
// tree of its shard.
func NewOwner(cfg OwnerConfig, traffic *Traffic) (*Owner, error) {
	hc, err := he.NewAggregationContext(cfg.HE)
	if err != nil {
		return nil, err
	}
	tree, err := CommitDataset(cfg.Shard)
	if err != nil {
		return nil, fmt.Errorf("owner %d: %w", cfg.Index, err)
	}
	kem, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if traffic == nil {
		traffic = &Traffic{}
	}
	return &Owner{cfg: cfg, he: hc, kem: kem, tree: tree, traffic: traffic,
		log: cfg.Log.With("training", cfg.TrainingID, "owner", cfg.Index)}, nil
}

// Tree returns the owner's dataset commitment tree (to prove samples).
func (o *Owner) Tree() *DatasetTree { return o.tree }

// Stats returns the owner's per-round figures.
func (o *Owner) Stats() []OwnerRoundStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.stats)
}

// roundStats returns the figures of round r, if the owner finished it.
func (o *Owner) roundStats(r int) (OwnerRoundStats, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.stats {
		if s.Round == r {
			return s, true
		}
	}
	return OwnerRoundStats{}, false
}

// stopped reports whether Run has returned.
func (o *Owner) stopped() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done != nil
}

// Model returns the owner's current model (after Run).
func (o *Owner) Model() *model.Float { return o.model }

// Run takes part in the whole training and returns the final model, which
// the owner has decrypted and checked itself.
func (o *Owner) Run(ctx context.Context) (m *model.Float, err error) {
	defer func() {
		o.mu.Lock()
		o.done = errors.Join(err, errFinished)
		o.mu.Unlock()
	}()
	if err := o.join(ctx); err != nil {
		return nil, fmt.Errorf("owner %d: %w", o.cfg.Index, err)
	}
	if err := o.setup(ctx); err != nil {
		return nil, fmt.Errorf("owner %d: setup: %w", o.cfg.Index, err)
	}
	for r := 1; r <= o.train.Rounds; r++ {
		if err := o.round(ctx, r); err != nil {
			return nil, fmt.Errorf("owner %d: round %d: %w", o.cfg.Index, r, err)
		}
	}
	return o.model, nil
}

// join reads the training from the ledger, commits the owner's dataset
// and fetches the initial model and the salt.
func (o *Owner) join(ctx context.Context) error {
	id := o.cfg.TrainingID
	me := o.cfg.Key.Public().(ed25519.PublicKey)
	rec, err := waitFor(ctx, o.cfg.Ledger, id, "the training's start", func(*ledgerv1.TrainingRecord) (bool, error) { return true, nil })
	if err != nil {
		return err
	}
	keys := rec.Start.OwnerKeys
	if o.cfg.Index < 0 || o.cfg.Index >= len(keys) || !bytes.Equal(keys[o.cfg.Index], me) {
		return fmt.Errorf("this key is not owner %d of training %q", o.cfg.Index, id)
	}
	if o.train, err = ConfigFromLedger(rec); err != nil {
		return err
	}
	if rec.Start.HeParameters != o.he.Fingerprint() {
		return fmt.Errorf("the training uses HE parameters %q, this owner %q", rec.Start.HeParameters, o.he.Fingerprint())
	}
	if datasetOf(rec, o.cfg.Index) == nil {
		if _, err := submit(ctx, o.cfg.Ledger, o.cfg.ChainID, o.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_DatasetCommitment{DatasetCommitment: &ledgerv1.DatasetCommitment{
			TrainingId: id, MerkleRoot: o.tree.Root(), NumSamples: o.tree.Size(), KemKey: o.kem.PublicKey().Bytes()}}}); err != nil {
			return fmt.Errorf("commit dataset: %w", err)
		}
	}
	info, err := o.cfg.Coordinator.GetTraining(ctx, &federatedv1.GetTrainingRequest{TrainingId: id, Owner: uint32(o.cfg.Index)})
	if err != nil {
		return fmt.Errorf("get training: %w", err)
	}
	m, err := ParseModel(info.InitialModel, model.DefaultArchitecture)
	if err != nil {
		return err
	}
	if d := ModelDigest(m); !equal32(rec.Start.InitialModelDigest, d) {
		return fmt.Errorf("the coordinator's initial model (%x) is not the one on the ledger (%x)", d[:8], rec.Start.InitialModelDigest[:8])
	}
	salt, err := unseal(o.kem, rec.Start.CoordinatorKemKey, sealContext(id, "salt", -1, o.cfg.Index), info.SealedSalt)
	if err != nil || len(salt) != len(o.salt) {
		return fmt.Errorf("commitment salt: %v", err)
	}
	copy(o.salt[:], salt)
	o.model = m
	o.layout = newLayout(NumParams(m), o.he.Slots(), o.train.Scaffold)
	if o.train.Scaffold {
		o.ci, o.c = make([]float64, NumParams(m)), make([]float64, NumParams(m))
	}
	return nil
}

// setup runs the collective key generation and the threshold dealing.
func (o *Owner) setup(ctx context.Context) error {
	id, me, n, t := o.cfg.TrainingID, o.cfg.Index, o.train.Owners, o.train.Threshold
	rec, err := waitFor(ctx, o.cfg.Ledger, id, "every owner's dataset", func(r *ledgerv1.TrainingRecord) (bool, error) {
		return len(r.Datasets) == n, nil
	})
	if err != nil {
		return err
	}
	crs, err := crsSeed(rec)
	if err != nil {
		return err
	}
	all := seq(n)
	if o.party, err = o.he.NewParty(uint64(me + 1)); err != nil {
		return err
	}
	pks, err := o.party.PublicKeyShare(crs)
	if err != nil {
		return err
	}
	pkw, _ := pks.MarshalBinary()
	dealt, err := o.party.DealThreshold(t, points(all))
	if err != nil {
		return err
	}
	msg := &federatedv1.SetupShares{TrainingId: id, Owner: uint32(me), PublicKeyShare: pkw, SealedThresholdShares: make([][]byte, n)}
	var mine *he.ThresholdShare
	for j, s := range dealt {
		if j == me {
			mine = s
			continue
		}
		w, _ := s.MarshalBinary()
		if msg.SealedThresholdShares[j], err = seal(o.kem, datasetOf(rec, j).KemKey, sealContext(id, "threshold", me, j), w); err != nil {
			return err
		}
	}
	msg.Signature = signParts(o.cfg.Key, "setup", id, 0, me, append([][]byte{pkw}, msg.SealedThresholdShares...)...)
	if _, err := o.cfg.Coordinator.SubmitSetup(ctx, msg); err != nil {
		return fmt.Errorf("submit setup: %w", err)
	}
	bundle, err := o.cfg.Coordinator.GetSetup(ctx, &federatedv1.GetSetupRequest{TrainingId: id, Owner: uint32(me)})
	if err != nil {
		return fmt.Errorf("get setup: %w", err)
	}
	if len(bundle.Setups) != n {
		return fmt.Errorf("setup bundle has %d owners' setups, want %d", len(bundle.Setups), n)
	}
	var keyShares []*he.PublicKeyShare
	received := []*he.ThresholdShare{mine}
	for j, s := range bundle.Setups {
		if s.GetOwner() != uint32(j) || s.TrainingId != id || len(s.SealedThresholdShares) != n {
			return fmt.Errorf("setup %d in the bundle is malformed", j)
		}
		if err := verifyParts(rec.Start.OwnerKeys[j], s.Signature, "setup", id, 0, j, append([][]byte{s.PublicKeyShare}, s.SealedThresholdShares...)...); err != nil {
			return err
		}
		ks, err := o.he.UnmarshalPublicKeyShare(s.PublicKeyShare)
		if err != nil || ks.Point != uint64(j+1) {
			return fmt.Errorf("public-key share of owner %d: %v", j, err)
		}
		keyShares = append(keyShares, ks)
		if j == me {
			continue
		}
		plain, err := unseal(o.kem, datasetOf(rec, j).KemKey, sealContext(id, "threshold", j, me), s.SealedThresholdShares[me])
		if err != nil {
			return fmt.Errorf("threshold share from owner %d: %w", j, err)
		}
		ts, err := o.he.UnmarshalThresholdShare(plain)
		if err != nil {
			return fmt.Errorf("threshold share from owner %d: %w", j, err)
		}
		if ts.Dealer != uint64(j+1) {
			return fmt.Errorf("threshold share from owner %d names dealer %d", j, ts.Dealer)
		}
		received = append(received, ts)
	}
	if o.key, err = o.he.CollectivePublicKey(crs, keyShares); err != nil {
		return err
	}
	if err := o.party.AcceptThresholdShares(t, points(all), received); err != nil {
		return err
	}
	kd := o.key.Digest()
	rec, err = waitFor(ctx, o.cfg.Ledger, id, "the collective key", func(r *ledgerv1.TrainingRecord) (bool, error) {
		if len(r.KeyDigest) == 0 {
			return false, nil
		}
		if !equal32(r.KeyDigest, kd) {
			return false, fmt.Errorf("the coordinator recorded key %x, the owners' shares make %x", r.KeyDigest[:8], kd[:8])
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	o.rec = rec
	o.weights, err = committedWeights(rec)
	return err
}

// round trains, sends the encrypted update, checks and decrypts the
// aggregate, and checks the recorded model.
func (o *Owner) round(ctx context.Context, r int) error {
	id, me, f := o.cfg.TrainingID, o.cfg.Index, o.cfg.Faults
	st := OwnerRoundStats{Round: r}
	sent0, recv0 := o.traffic.Totals()
	if f.StopBeforeUpdate == r {
		return errStopped
	}
	// Local training from the current model.
	t0 := time.Now()
	var control *training.Control
	if o.train.Scaffold {
		off := make([]float64, len(o.c))
		for i := range off {
			off[i] = o.c[i] - o.ci[i]
		}
		control = &training.Control{Offset: splitParams(o.model, off)}
	}
	next, err := training.Train(ctx, o.cfg.Shard, o.train.trainConfig(me, r, o.model, &o.state, control))
	if err != nil {
		return err
	}
	st.TrainSeconds = time.Since(t0).Seconds()
	before, after := Flatten(o.model), Flatten(next)
	delta := make([]float64, len(before))
	for i := range delta {
		delta[i] = after[i] - before[i]
	}
	var ciNext []float64
	if control != nil {
		for _, g := range control.MeanGradient {
			ciNext = append(ciNext, g...)
		}
	}
	t0 = time.Now()
	v, err := o.layout.buildUpdate(delta, ciNext, o.weights[me], id, r, me)
	if err != nil {
		return err
	}
	ct, err := o.key.Encrypt(v)
	if err != nil {
		return err
	}
	wire, _ := ct.MarshalBinary()
	heTime := time.Since(t0)
	if f.TamperUpdate != nil {
		wire = f.TamperUpdate(r, wire)
	}
	d, base, kd := sha256.Sum256(wire), ModelDigest(o.model), o.key.Digest()
	if _, err := submit(ctx, o.cfg.Ledger, o.cfg.ChainID, o.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingUpdate{TrainingUpdate: &ledgerv1.TrainingUpdate{
		TrainingId: id, Round: uint32(r), UpdateDigest: d[:], BaseModelDigest: base[:], KeyDigest: kd[:]}}}); err != nil {
		return fmt.Errorf("record update: %w", err)
	}
	up := &federatedv1.Update{TrainingId: id, Round: uint32(r), Owner: uint32(me), Ciphertext: wire}
	if f.TamperSubmit != nil {
		f.TamperSubmit(r, up)
	}
	if _, err := o.cfg.Coordinator.SubmitUpdate(ctx, up); err != nil {
		return fmt.Errorf("submit update: %w", err)
	}
	if f.StopAfterUpdate == r {
		return errStopped
	}
	// The aggregate: it must be the recorded one, the sum of the recorded
	// updates of at least min_updates owners.
	rnd, err := waitRound(ctx, o.cfg.Ledger, id, r, "the round's aggregate", func(x *ledgerv1.TrainingRoundRecord) bool { return len(x.AggregateDigest) != 0 })
	if err != nil {
		return err
	}
	owners := make([]int, len(rnd.AggregateOwners))
	for i, x := range rnd.AggregateOwners {
		owners[i] = int(x)
	}
	if len(owners) < o.train.MinUpdates {
		return fmt.Errorf("the recorded aggregate sums %d updates, fewer than %d", len(owners), o.train.MinUpdates)
	}
	stream, err := o.cfg.Coordinator.GetAggregate(ctx, &federatedv1.RoundRequest{TrainingId: id, Round: uint32(r), Owner: uint32(me)})
	if err != nil {
		return fmt.Errorf("get aggregate: %w", err)
	}
	var cts []*he.VectorCiphertext
	var got []int
	if slices.Contains(owners, me) {
		own, err := o.key.UnmarshalVectorCiphertext(wire, o.layout.pieces(o.he.Slots()))
		if err != nil {
			return fmt.Errorf("own update: %w", err)
		}
		cts, got = append(cts, own), append(got, me)
	}
	for {
		u, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("get aggregate: %w", err)
		}
		want := updateDigestOf(rnd, int(u.Owner))
		if dd := sha256.Sum256(u.Ciphertext); want == nil || int(u.Owner) == me || !equal32(want, dd) {
			return fmt.Errorf("the coordinator sent an update of owner %d that is not the one recorded for round %d", u.Owner, r)
		}
		t1 := time.Now()
		c, err := o.key.UnmarshalVectorCiphertext(u.Ciphertext, o.layout.pieces(o.he.Slots()))
		if err != nil {
			return fmt.Errorf("update of owner %d: %w", u.Owner, err)
		}
		heTime += time.Since(t1)
		cts = append(cts, c)
		got = append(got, int(u.Owner))
	}
	slices.Sort(got)
	if !slices.Equal(got, owners) {
		return fmt.Errorf("the coordinator sent the updates of owners %v (with this owner's own), the recorded aggregate sums %v", got, owners)
	}
	t0 = time.Now()
	agg, err := o.he.Sum(cts...)
	if err != nil {
		return err
	}
	if !equal32(rnd.AggregateDigest, agg.Digest()) {
		return fmt.Errorf("the recorded aggregate is not the sum of the recorded updates: refusing to decrypt it")
	}
	// Decryption shares, one per subset of the aggregate's owners.
	byOwner := map[int][]*he.DecryptionShare{}
	if slices.Contains(owners, me) {
		msg := &federatedv1.DecryptionShares{TrainingId: id, Round: uint32(r), Owner: uint32(me)}
		party := o.party
		if f.BadShares == r {
			if party, err = o.wrongParty(); err != nil {
				return err
			}
		}
		for _, sub := range subsets(owners, o.train.Threshold, me) {
			s, err := party.DecryptionShare(agg, points(sub))
			if err != nil {
				return err
			}
			w, _ := s.MarshalBinary()
			msg.Shares = append(msg.Shares, w)
			byOwner[me] = append(byOwner[me], s)
		}
		msg.Signature = signParts(o.cfg.Key, "shares", id, r, me, msg.Shares...)
		heTime += time.Since(t0)
		if _, err := o.cfg.Coordinator.SubmitShares(ctx, msg); err != nil {
			return fmt.Errorf("submit shares: %w", err)
		}
	}
	// Everyone's shares: decrypt with every complete subset, check.
	sstream, err := o.cfg.Coordinator.GetShares(ctx, &federatedv1.RoundRequest{TrainingId: id, Round: uint32(r), Owner: uint32(me)})
	if err != nil {
		return fmt.Errorf("get shares: %w", err)
	}
	for {
		m, err := sstream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("get shares: %w", err)
		}
		j := int(m.Owner)
		if j < 0 || j >= o.train.Owners || byOwner[j] != nil {
			return fmt.Errorf("shares from unknown or repeated owner %d", j)
		}
		if err := verifyParts(o.rec.Start.OwnerKeys[j], m.Signature, "shares", id, r, j, m.Shares...); err != nil {
			return err
		}
		t1 := time.Now()
		parsed, err := parseSharesFor(o.he, o.key, agg, owners, o.train.Threshold, m)
		if err != nil {
			return err
		}
		heTime += time.Since(t1)
		byOwner[j] = parsed
	}
	t0 = time.Now()
	vals, _, _, err := decryptAll(o.key, agg, owners, o.train.Threshold, byOwner, o.layout.slots)
	if err != nil {
		return err
	}
	mean, cNext, err := o.layout.openAggregate(vals, id, r, owners, o.weights)
	if err != nil {
		return err
	}
	heTime += time.Since(t0)
	newModel, err := applyMean(o.model, mean)
	if err != nil {
		return err
	}
	md := ModelDigest(newModel)
	rnd, err = waitRound(ctx, o.cfg.Ledger, id, r, "the round's result", func(x *ledgerv1.TrainingRoundRecord) bool { return len(x.ModelDigest) != 0 })
	if err != nil {
		return err
	}
	if !equal32(rnd.ModelDigest, md) {
		return fmt.Errorf("the coordinator recorded model %x, the decrypted aggregate gives %x", rnd.ModelDigest[:8], md[:8])
	}
	if r == o.train.Rounds && o.cfg.Validation != nil {
		com, _, err := Commit(newModel, id, o.cfg.Validation, o.salt)
		if err != nil {
			return err
		}
		if !bytes.Equal(rnd.ModelCommitment, com[:]) {
			return fmt.Errorf("the recorded commitment of the final model is not the commitment of the decrypted model")
		}
	}
	o.model = newModel
	if o.train.Scaffold {
		o.c = cNext
		if slices.Contains(owners, me) {
			o.ci = ciNext // otherwise the update was left out: c_i stays
		}
	}
	st.HESeconds = heTime.Seconds()
	sent1, recv1 := o.traffic.Totals()
	st.BytesSent, st.BytesReceived = sent1-sent0, recv1-recv0
	o.mu.Lock()
	o.stats = append(o.stats, st)
	o.mu.Unlock()
	return nil
}

// wrongParty is this owner holding a share of another secret (for the
// BadShares fault): its shares are well-formed, for the right aggregate,
// key and subsets, and wrong.
func (o *Owner) wrongParty() (*he.Party, error) {
	all := points(seq(o.train.Owners))
	var mine []*he.ThresholdShare
	for j := range o.train.Owners {
		d, err := o.he.NewParty(uint64(j + 1))
		if err != nil {
			return nil, err
		}
		dealt, err := d.DealThreshold(o.train.Threshold, all)
		if err != nil {
			return nil, err
		}
		mine = append(mine, dealt[o.cfg.Index])
	}
	p, err := o.he.NewParty(uint64(o.cfg.Index + 1))
	if err != nil {
		return nil, err
	}
	return p, p.AcceptThresholdShares(o.train.Threshold, all, mine)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
