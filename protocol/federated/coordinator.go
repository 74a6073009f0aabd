package federated

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	federatedv1 "github.com/veil-project/veil/api/veil/federated/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// CoordinatorConfig configures the aggregator of one training.
type CoordinatorConfig struct {
	Config  Config
	Ledger  ledger.TrainingAPI
	ChainID string
	// Key signs the coordinator's ledger transactions; it may not be an
	// owner's key.
	Key       ed25519.PrivateKey
	OwnerKeys []ed25519.PublicKey
	// Validation is the public validation set: the quantisation's
	// calibration and the accuracy recorded per round.
	Validation *dataset.Set
	// Initial is the round-0 model (nil: drawn from Config.Seed).
	Initial   *model.Float
	HE        he.AggregationParameters
	ModelName string
	Log       *slog.Logger
	// Evaluate, if set, reports an accuracy of each round's model (the
	// CLI's MNIST test accuracy); it is informative only.
	Evaluate func(*model.Float) float64
	// OnRound, if set, is called after each round.
	OnRound func(RoundStats)
}

// RoundStats describes one round, as the coordinator saw it.
type RoundStats struct {
	Round      int     `json:"round"`
	Updates    []int   `json:"updates"`    // owners summed
	Decryptors []int   `json:"decryptors"` // owners whose shares were combined
	Subsets    int     `json:"subsets_checked"`
	Validation float64 `json:"validation_accuracy"`
	Accuracy   float64 `json:"test_accuracy,omitempty"`
	// Seconds: the whole round (local training included); HESeconds: the
	// coordinator's own HE work (decode, sum, decrypt every subset).
	Seconds   float64 `json:"seconds"`
	HESeconds float64 `json:"coordinator_he_seconds"`
	// ModelCommitment is the Poseidon2 commitment of the round's model.
	ModelCommitment string `json:"model_commitment"`
}

// Coordinator runs the aggregator side: it relays the setup, sums the
// updates homomorphically, collects the decryption shares and records
// each step on the ledger. It never holds a secret key share.
type Coordinator struct {
	federatedv1.UnimplementedAggregatorServer

	cfg    CoordinatorConfig
	he     *he.AggregationContext
	kem    *ecdh.PrivateKey
	salt   zk.Salt
	layout updateLayout
	log    *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	rec     *ledgerv1.TrainingRecord
	setups  []*federatedv1.SetupShares
	key     *he.CollectiveKey
	weights []float64
	rounds  map[int]*roundState
	initial *model.Float
	current *model.Float
	failed  error
}

type roundState struct {
	started time.Time
	updates map[int]*he.VectorCiphertext
	wires   map[int][]byte
	owners  []int // summed, once the aggregate is recorded
	agg     *he.VectorCiphertext
	shares  map[int]*federatedv1.DecryptionShares
	parsed  map[int][]*he.DecryptionShare
	closed  bool // share phase over
	heTime  time.Duration
}

// NewCoordinator prepares a coordinator (nothing is submitted yet).
func NewCoordinator(cfg CoordinatorConfig) (*Coordinator, error) {
	if err := cfg.Config.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.OwnerKeys) != cfg.Config.Owners {
		return nil, fmt.Errorf("coordinator: %d owner keys for %d owners", len(cfg.OwnerKeys), cfg.Config.Owners)
	}
	if cfg.Validation == nil || cfg.Validation.Len() == 0 {
		return nil, errors.New("coordinator: no validation set")
	}
	hc, err := he.NewAggregationContext(cfg.HE)
	if err != nil {
		return nil, err
	}
	kem, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt, err := zk.NewSalt()
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ModelName == "" {
		cfg.ModelName = cfg.Config.TrainingID
	}
	init := cfg.Initial
	if init == nil {
		if init, err = InitialModel(cfg.Config.Seed); err != nil {
			return nil, err
		}
	}
	c := &Coordinator{
		cfg: cfg, he: hc, kem: kem, salt: salt, log: cfg.Log.With("training", cfg.Config.TrainingID, "role", "coordinator"),
		changed: make(chan struct{}), rounds: map[int]*roundState{}, initial: init, current: init,
		setups: make([]*federatedv1.SetupShares, cfg.Config.Owners),
	}
	c.layout = newLayout(NumParams(init), hc.Slots(), cfg.Config.Scaffold)
	return c, nil
}

// InitialModel draws the round-0 network of the default architecture
// (model.Train's initialisation, no training step).
func InitialModel(seed uint64) (*model.Float, error) {
	one := &dataset.Set{Images: make([]pixels.Image, 1), Labels: []uint8{0}}
	f, err := training.Train(context.Background(), one, training.Config{
		Arch: model.DefaultArchitecture, Steps: 1, BatchSize: 1, LearningRate: 1e-300, Seed: seed,
	})
	if err != nil {
		return nil, fmt.Errorf("initial model: %w", err)
	}
	return f, nil
}

// Salt returns the salt of the model commitments (the serving party needs
// it to prove; keep it secret, 0600).
func (c *Coordinator) Salt() zk.Salt { return c.salt }

func (c *Coordinator) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// wait blocks until the state changes or ctx ends; call with c.mu held.
func (c *Coordinator) wait(ctx context.Context) error {
	ch := c.changed
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Coordinator) fail(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == nil {
		c.failed = err
		c.notify()
	}
	return err
}

// Result is the outcome of a training.
type Result struct {
	Model      *model.Float
	Fixed      *model.Model
	Commitment zk.Commitment
	Rounds     []RoundStats
}

// Start records the training on the ledger (TrainingStart).
func (c *Coordinator) Start(ctx context.Context) error {
	cfg := c.cfg.Config
	vd := SetDigest(c.cfg.Validation)
	md := ModelDigest(c.current)
	st := &ledgerv1.TrainingStart{
		TrainingId: cfg.TrainingID, Architecture: model.DefaultArchitecture.String(), Threshold: uint32(cfg.Threshold),
		MinUpdates: uint32(cfg.MinUpdates), Rounds: uint32(cfg.Rounds), HeParameters: c.he.Fingerprint(),
		InitialModelDigest: md[:], ValidationDigest: vd[:], CoordinatorKemKey: c.kem.PublicKey().Bytes(), Config: cfg.marshal(),
	}
	for _, k := range c.cfg.OwnerKeys {
		st.OwnerKeys = append(st.OwnerKeys, k)
	}
	if _, err := submit(ctx, c.cfg.Ledger, c.cfg.ChainID, c.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingStart{TrainingStart: st}}); err != nil {
		return fmt.Errorf("start training: %w", err)
	}
	return nil
}

// Run drives the training after Start: it waits for every owner's setup,
// records the collective key, then runs the rounds. It returns the final
// model, or the first failure (a round whose decryption fails its checks
// is never recorded).
func (c *Coordinator) Run(ctx context.Context) (*Result, error) {
	cfg := c.cfg.Config
	if err := c.setup(ctx); err != nil {
		return nil, c.fail(err)
	}
	res := &Result{}
	for r := 1; r <= cfg.Rounds; r++ {
		st, err := c.round(ctx, r)
		if err != nil {
			return nil, c.fail(fmt.Errorf("round %d: %w", r, err))
		}
		res.Rounds = append(res.Rounds, st)
		if c.cfg.OnRound != nil {
			c.cfg.OnRound(st)
		}
	}
	c.mu.Lock()
	res.Model = c.current
	c.mu.Unlock()
	com, fixed, err := Commit(res.Model, c.cfg.ModelName, c.cfg.Validation, c.salt)
	if err != nil {
		return nil, err
	}
	res.Commitment, res.Fixed = com, fixed
	return res, nil
}

func (c *Coordinator) setup(ctx context.Context) error {
	cfg := c.cfg.Config
	sctx, cancel := context.WithTimeout(ctx, cfg.UpdateTimeout)
	defer cancel()
	c.mu.Lock()
	for slices.Contains(c.setups, nil) && c.failed == nil {
		if err := c.wait(sctx); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("setup: not every owner posted its shares: %w", err)
		}
	}
	setups := slices.Clone(c.setups)
	c.mu.Unlock()
	rec, err := c.cfg.Ledger.Training(ctx, cfg.TrainingID)
	if err != nil {
		return err
	}
	crs, err := crsSeed(rec)
	if err != nil {
		return err
	}
	var shares []*he.PublicKeyShare
	for o, s := range setups {
		ks, err := c.he.UnmarshalPublicKeyShare(s.PublicKeyShare)
		if err != nil {
			return fmt.Errorf("setup of owner %d: %w", o, err)
		}
		shares = append(shares, ks)
	}
	key, err := c.he.CollectivePublicKey(crs, shares)
	if err != nil {
		return err
	}
	w, err := committedWeights(rec)
	if err != nil {
		return err
	}
	d := key.Digest()
	if _, err := submit(ctx, c.cfg.Ledger, c.cfg.ChainID, c.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingKey{TrainingKey: &ledgerv1.TrainingKey{
		TrainingId: cfg.TrainingID, KeyDigest: d[:]}}}); err != nil {
		return fmt.Errorf("record the collective key: %w", err)
	}
	c.mu.Lock()
	c.key, c.weights, c.rec = key, w, rec
	c.roundState(1)
	c.notify()
	c.mu.Unlock()
	c.log.Info("collective key recorded", "key", fmt.Sprintf("%x", d[:8]))
	return nil
}

func (c *Coordinator) roundState(r int) *roundState {
	rs, ok := c.rounds[r]
	if !ok {
		rs = &roundState{started: time.Now(), updates: map[int]*he.VectorCiphertext{}, wires: map[int][]byte{},
			shares: map[int]*federatedv1.DecryptionShares{}, parsed: map[int][]*he.DecryptionShare{}}
		c.rounds[r] = rs
	}
	return rs
}

func (c *Coordinator) round(ctx context.Context, r int) (RoundStats, error) {
	cfg := c.cfg.Config
	st := RoundStats{Round: r}
	c.mu.Lock()
	rs := c.roundState(r)
	// Updates: all owners, or as many as came before the timeout.
	deadline, cancel := context.WithTimeout(ctx, cfg.UpdateTimeout)
	for len(rs.updates) < cfg.Owners && c.failed == nil {
		if err := c.wait(deadline); err != nil {
			if ctx.Err() != nil {
				c.mu.Unlock()
				cancel()
				return st, ctx.Err()
			}
			break
		}
	}
	cancel()
	var owners []int
	var cts []*he.VectorCiphertext
	for o := range cfg.Owners {
		if ct, ok := rs.updates[o]; ok {
			owners = append(owners, o)
			cts = append(cts, ct)
		}
	}
	c.mu.Unlock()
	if len(owners) < cfg.MinUpdates {
		return st, fmt.Errorf("only owners %v sent updates before the timeout; an aggregate needs %d", owners, cfg.MinUpdates)
	}
	t0 := time.Now()
	agg, err := c.he.Sum(cts...)
	if err != nil {
		return st, err
	}
	heTime := time.Since(t0)
	ad := agg.Digest()
	u32 := make([]uint32, len(owners))
	for i, o := range owners {
		u32[i] = uint32(o)
	}
	if _, err := submit(ctx, c.cfg.Ledger, c.cfg.ChainID, c.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingAggregate{TrainingAggregate: &ledgerv1.TrainingAggregate{
		TrainingId: cfg.TrainingID, Round: uint32(r), Owners: u32, AggregateDigest: ad[:]}}}); err != nil {
		return st, fmt.Errorf("record the aggregate: %w", err)
	}
	c.mu.Lock()
	rs.owners, rs.agg = owners, agg
	c.notify()
	// Shares: every owner of the aggregate, or those that came in time.
	deadline, cancel = context.WithTimeout(ctx, cfg.ShareTimeout)
	for len(rs.parsed) < len(owners) && c.failed == nil {
		if err := c.wait(deadline); err != nil {
			if ctx.Err() != nil {
				c.mu.Unlock()
				cancel()
				return st, ctx.Err()
			}
			break
		}
	}
	cancel()
	rs.closed = true
	byOwner := make(map[int][]*he.DecryptionShare, len(rs.parsed))
	for o, s := range rs.parsed {
		byOwner[o] = s
	}
	key, weights, current := c.key, c.weights, c.current
	c.notify()
	c.mu.Unlock()

	t0 = time.Now()
	vals, used, decryptors, err := decryptAll(key, agg, owners, cfg.Threshold, byOwner, c.layout.slots)
	if err != nil {
		return st, err
	}
	mean, _, err := c.layout.openAggregate(vals, cfg.TrainingID, r, owners, weights)
	if err != nil {
		return st, err
	}
	heTime += time.Since(t0)
	next, err := applyMean(current, mean)
	if err != nil {
		return st, err
	}
	com, fixed, err := Commit(next, c.cfg.ModelName, c.cfg.Validation, c.salt)
	if err != nil {
		return st, err
	}
	md := ModelDigest(next)
	st.Validation = training.FixedAccuracy(fixed, c.cfg.Validation)
	d32 := make([]uint32, len(decryptors))
	for i, o := range decryptors {
		d32[i] = uint32(o)
	}
	// Open the next round before recording this one's result: an owner may
	// send its next update as soon as it reads the result.
	c.mu.Lock()
	if r < cfg.Rounds {
		c.roundState(r + 1)
	}
	c.mu.Unlock()
	if _, err := submit(ctx, c.cfg.Ledger, c.cfg.ChainID, c.cfg.Key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_TrainingRoundResult{TrainingRoundResult: &ledgerv1.TrainingRoundResult{
		TrainingId: cfg.TrainingID, Round: uint32(r), ModelDigest: md[:], ModelCommitment: com[:], Decryptors: d32,
		SubsetsChecked: uint32(len(used)), ValidationAccuracyBp: uint32(st.Validation*10000 + 0.5)}}}); err != nil {
		return st, fmt.Errorf("record the round's model: %w", err)
	}
	c.mu.Lock()
	c.current = next
	rs.heTime = heTime
	c.notify()
	c.mu.Unlock()
	st.Updates, st.Decryptors, st.Subsets = owners, decryptors, len(used)
	st.Seconds, st.HESeconds = time.Since(rs.started).Seconds(), heTime.Seconds()
	st.ModelCommitment = com.String()
	if c.cfg.Evaluate != nil {
		st.Accuracy = c.cfg.Evaluate(next)
	}
	c.log.Info("round done", "round", r, "owners", owners, "subsets", len(used), "validation", st.Validation)
	return st, nil
}

// applyMean returns current + mean.
func applyMean(current *model.Float, mean []float64) (*model.Float, error) {
	v := Flatten(current)
	if len(v) != len(mean) {
		return nil, fmt.Errorf("apply update: %d changes for %d parameters", len(mean), len(v))
	}
	for i := range v {
		v[i] += mean[i]
	}
	return Unflatten(current, v)
}

// ---- the gRPC service ----

func (c *Coordinator) checkTraining(id string, owner uint32) error {
	if id != c.cfg.Config.TrainingID {
		return status.Errorf(codes.NotFound, "no training %q here", id)
	}
	if int(owner) >= c.cfg.Config.Owners {
		return status.Errorf(codes.InvalidArgument, "owner %d: the training has %d owners", owner, c.cfg.Config.Owners)
	}
	return nil
}

func (c *Coordinator) failedStatus() error {
	if c.failed != nil {
		return status.Errorf(codes.Aborted, "training failed: %v", c.failed)
	}
	return nil
}

// GetTraining implements federatedv1.AggregatorServer.
func (c *Coordinator) GetTraining(ctx context.Context, req *federatedv1.GetTrainingRequest) (*federatedv1.TrainingInfo, error) {
	if err := c.checkTraining(req.TrainingId, req.Owner); err != nil {
		return nil, err
	}
	rec, err := waitFor(ctx, c.cfg.Ledger, req.TrainingId, "the owner's dataset", func(r *ledgerv1.TrainingRecord) (bool, error) {
		return datasetOf(r, int(req.Owner)) != nil, nil
	})
	if err != nil {
		return nil, status.Errorf(codes.DeadlineExceeded, "%v", err)
	}
	ds := datasetOf(rec, int(req.Owner))
	sealed, err := seal(c.kem, ds.KemKey, sealContext(req.TrainingId, "salt", -1, int(req.Owner)), c.salt[:])
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &federatedv1.TrainingInfo{TrainingId: req.TrainingId, InitialModel: ModelBytes(c.initial), SealedSalt: sealed}, nil
}

// SubmitSetup implements federatedv1.AggregatorServer.
func (c *Coordinator) SubmitSetup(ctx context.Context, s *federatedv1.SetupShares) (*federatedv1.Ack, error) {
	if err := c.checkTraining(s.TrainingId, s.Owner); err != nil {
		return nil, err
	}
	n := c.cfg.Config.Owners
	if len(s.SealedThresholdShares) != n {
		return nil, status.Errorf(codes.InvalidArgument, "%d sealed threshold shares, want one per owner (%d)", len(s.SealedThresholdShares), n)
	}
	parts := append([][]byte{s.PublicKeyShare}, s.SealedThresholdShares...)
	if err := verifyParts(c.cfg.OwnerKeys[s.Owner], s.Signature, "setup", s.TrainingId, 0, int(s.Owner), parts...); err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "%v", err)
	}
	ks, err := c.he.UnmarshalPublicKeyShare(s.PublicKeyShare)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "public-key share: %v", err)
	}
	if ks.Point != uint64(s.Owner)+1 {
		return nil, status.Errorf(codes.InvalidArgument, "public-key share for point %d, owner %d holds point %d", ks.Point, s.Owner, s.Owner+1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.failedStatus(); err != nil {
		return nil, err
	}
	if c.key != nil {
		return nil, status.Error(codes.FailedPrecondition, "the setup is closed: the collective key is recorded")
	}
	if c.setups[s.Owner] != nil {
		return nil, status.Errorf(codes.AlreadyExists, "owner %d already posted its setup", s.Owner)
	}
	c.setups[s.Owner] = s
	c.notify()
	return &federatedv1.Ack{}, nil
}

// GetSetup implements federatedv1.AggregatorServer.
func (c *Coordinator) GetSetup(ctx context.Context, req *federatedv1.GetSetupRequest) (*federatedv1.SetupBundle, error) {
	if err := c.checkTraining(req.TrainingId, req.Owner); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for slices.Contains(c.setups, nil) {
		if err := c.failedStatus(); err != nil {
			return nil, err
		}
		if err := c.wait(ctx); err != nil {
			return nil, status.FromContextError(err).Err()
		}
	}
	return &federatedv1.SetupBundle{Setups: slices.Clone(c.setups)}, nil
}

// SubmitUpdate implements federatedv1.AggregatorServer. The update must be
// the one the owner recorded on the ledger for this round: same digest,
// under the training's key, of the layout's size, fresh.
func (c *Coordinator) SubmitUpdate(ctx context.Context, u *federatedv1.Update) (*federatedv1.Ack, error) {
	if err := c.checkTraining(u.TrainingId, u.Owner); err != nil {
		return nil, err
	}
	c.mu.Lock()
	key := c.key
	rs, open := c.rounds[int(u.Round)]
	closed := open && rs.owners != nil
	err := c.failedStatus()
	c.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case key == nil:
		return nil, status.Error(codes.FailedPrecondition, "no collective key yet")
	case !open:
		return nil, status.Errorf(codes.FailedPrecondition, "round %d is not open", u.Round)
	case closed:
		return nil, status.Errorf(codes.FailedPrecondition, "round %d already has its aggregate: the update comes too late or is a replay", u.Round)
	}
	rnd, rerr := c.cfg.Ledger.TrainingRound(ctx, u.TrainingId, u.Round)
	want := updateDigestOf(rnd, int(u.Owner))
	if rerr != nil || want == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "owner %d has no update recorded on the ledger for round %d (record it first)", u.Owner, u.Round)
	}
	if d := sha256.Sum256(u.Ciphertext); !equal32(want, d) {
		return nil, status.Errorf(codes.InvalidArgument, "update digest %x is not the one owner %d recorded for round %d (%x): a replay or an altered update", d[:8], u.Owner, u.Round, want[:8])
	}
	ct, err := key.UnmarshalVectorCiphertext(u.Ciphertext, c.layout.pieces(c.he.Slots()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "update of owner %d: %v", u.Owner, err)
	}
	if ct.Summands() != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "update of owner %d claims %d summands: an update is one encryption", u.Owner, ct.Summands())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rs.owners != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "round %d already has its aggregate", u.Round)
	}
	if _, dup := rs.updates[int(u.Owner)]; dup {
		return nil, status.Errorf(codes.AlreadyExists, "owner %d already sent its update for round %d", u.Owner, u.Round)
	}
	rs.updates[int(u.Owner)] = ct
	rs.wires[int(u.Owner)] = u.Ciphertext
	c.notify()
	return &federatedv1.Ack{}, nil
}

// GetAggregate implements federatedv1.AggregatorServer.
func (c *Coordinator) GetAggregate(req *federatedv1.RoundRequest, stream federatedv1.Aggregator_GetAggregateServer) error {
	if err := c.checkTraining(req.TrainingId, req.Owner); err != nil {
		return err
	}
	ctx := stream.Context()
	c.mu.Lock()
	var rs *roundState
	for {
		if err := c.failedStatus(); err != nil {
			c.mu.Unlock()
			return err
		}
		if r, ok := c.rounds[int(req.Round)]; ok && r.owners != nil {
			rs = r
			break
		}
		if err := c.wait(ctx); err != nil {
			c.mu.Unlock()
			return status.FromContextError(err).Err()
		}
	}
	owners, wires := rs.owners, rs.wires
	c.mu.Unlock()
	for _, o := range owners {
		if o == int(req.Owner) {
			continue // the owner has its own update
		}
		if err := stream.Send(&federatedv1.Update{TrainingId: req.TrainingId, Round: req.Round, Owner: uint32(o), Ciphertext: wires[o]}); err != nil {
			return err
		}
	}
	return nil
}

// SubmitShares implements federatedv1.AggregatorServer: one share per
// t-subset of the aggregate's owners containing the sender, each for the
// recorded aggregate and key.
func (c *Coordinator) SubmitShares(ctx context.Context, m *federatedv1.DecryptionShares) (*federatedv1.Ack, error) {
	if err := c.checkTraining(m.TrainingId, m.Owner); err != nil {
		return nil, err
	}
	if err := verifyParts(c.cfg.OwnerKeys[m.Owner], m.Signature, "shares", m.TrainingId, int(m.Round), int(m.Owner), m.Shares...); err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "%v", err)
	}
	c.mu.Lock()
	rs, ok := c.rounds[int(m.Round)]
	err := c.failedStatus()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok || rs.owners == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "round %d has no aggregate to decrypt", m.Round)
	}
	parsed, err := c.parseShares(rs, m)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rs.closed {
		return nil, status.Errorf(codes.FailedPrecondition, "round %d's share phase is closed", m.Round)
	}
	if _, dup := rs.parsed[int(m.Owner)]; dup {
		return nil, status.Errorf(codes.AlreadyExists, "owner %d already sent its shares for round %d", m.Owner, m.Round)
	}
	rs.parsed[int(m.Owner)] = parsed
	rs.shares[int(m.Owner)] = m
	c.notify()
	return &federatedv1.Ack{}, nil
}

// parseShares decodes and checks an owner's shares against a round's
// aggregate: one per subset of the aggregate's owners that contains the
// sender, for this key and this ciphertext.
func (c *Coordinator) parseShares(rs *roundState, m *federatedv1.DecryptionShares) ([]*he.DecryptionShare, error) {
	c.mu.Lock()
	key, agg, owners := c.key, rs.agg, rs.owners
	c.mu.Unlock()
	return parseSharesFor(c.he, key, agg, owners, c.cfg.Config.Threshold, m)
}

func parseSharesFor(hc *he.AggregationContext, key *he.CollectiveKey, agg *he.VectorCiphertext, owners []int, t int, m *federatedv1.DecryptionShares) ([]*he.DecryptionShare, error) {
	o := int(m.Owner)
	if !slices.Contains(owners, o) {
		return nil, fmt.Errorf("owner %d is not in the aggregate %v", o, owners)
	}
	want := subsets(owners, t, o)
	if len(m.Shares) != len(want) {
		return nil, fmt.Errorf("owner %d sent %d shares, want one for each of its %d subsets", o, len(m.Shares), len(want))
	}
	out := make([]*he.DecryptionShare, len(want))
	for i, raw := range m.Shares {
		s, err := hc.UnmarshalDecryptionShare(raw)
		if err != nil {
			return nil, fmt.Errorf("share %d of owner %d: %w", i, o, err)
		}
		switch {
		case s.Point != uint64(o+1):
			return nil, fmt.Errorf("share %d of owner %d is from point %d", i, o, s.Point)
		case !slices.Equal(s.Subset, points(want[i])):
			return nil, fmt.Errorf("share %d of owner %d is for subset %v, want %v", i, o, s.Subset, points(want[i]))
		case s.KeyDigest != key.Digest():
			return nil, fmt.Errorf("share %d of owner %d is for another key", i, o)
		case s.CiphertextDigest != agg.Digest():
			return nil, fmt.Errorf("share %d of owner %d is for another ciphertext, not the round's aggregate", i, o)
		}
		out[i] = s
	}
	return out, nil
}

// GetShares implements federatedv1.AggregatorServer.
func (c *Coordinator) GetShares(req *federatedv1.RoundRequest, stream federatedv1.Aggregator_GetSharesServer) error {
	if err := c.checkTraining(req.TrainingId, req.Owner); err != nil {
		return err
	}
	ctx := stream.Context()
	c.mu.Lock()
	var rs *roundState
	for {
		if r, ok := c.rounds[int(req.Round)]; ok && r.closed {
			rs = r
			break
		}
		if err := c.failedStatus(); err != nil {
			c.mu.Unlock()
			return err
		}
		if err := c.wait(ctx); err != nil {
			c.mu.Unlock()
			return status.FromContextError(err).Err()
		}
	}
	var all []*federatedv1.DecryptionShares
	for o := range c.cfg.Config.Owners {
		if m, ok := rs.shares[o]; ok && o != int(req.Owner) { // the owner has its own
			all = append(all, m)
		}
	}
	c.mu.Unlock()
	for _, m := range all {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}
