package federated

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
)

// Config is a training's public configuration. The coordinator publishes it
// (as JSON) in the ledger's TrainingStart; every owner reads it from there.
type Config struct {
	TrainingID string `json:"training_id"`
	// Owners is N; Threshold is t (owners needed to decrypt); MinUpdates
	// is the fewest updates an aggregate may sum.
	Owners     int `json:"owners"`
	Threshold  int `json:"threshold"`
	MinUpdates int `json:"min_updates"`
	Rounds     int `json:"rounds"`
	// Local training per round (model.Train): LocalSteps mini-batches of
	// BatchSize, Adam at LearningRate on one cosine schedule over all
	// rounds, random distortions if Augment. Owners keep their Adam state
	// between rounds.
	LocalSteps   int     `json:"local_steps"`
	BatchSize    int     `json:"batch_size"`
	LearningRate float64 `json:"learning_rate"`
	WeightDecay  float64 `json:"weight_decay"`
	Augment      bool    `json:"augment"`
	Seed         uint64  `json:"seed"`
	// Scaffold corrects the owners' drift on non-IID shards with SCAFFOLD
	// control variates (Karimireddy et al., 2020); each update then also
	// carries the change of the owner's control variate.
	Scaffold bool `json:"scaffold"`
	// DP, when set, makes every owner train with DP-SGD (docs/training.md).
	DP *DPConfig `json:"dp,omitempty"`
	// UpdateTimeout and ShareTimeout bound how long the coordinator waits
	// for updates and decryption shares before it goes on without the
	// owners that did not answer.
	UpdateTimeout time.Duration `json:"update_timeout"`
	ShareTimeout  time.Duration `json:"share_timeout"`
}

// DPConfig is per-sample differential privacy for each owner's local
// training: DP-SGD with Poisson sampling, per-sample gradient clipping to
// L2 norm Clip and Gaussian noise of standard deviation NoiseMultiplier·Clip
// on the sum of each batch's clipped gradients.
type DPConfig struct {
	Clip            float64 `json:"clip"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Delta           float64 `json:"delta"`
}

// DefaultConfig returns the configuration of the demo: 4 owners,
// 3-of-4 decryption, aggregates of at least 3 updates.
func DefaultConfig(id string) Config {
	return Config{
		TrainingID: id, Owners: 4, Threshold: 3, MinUpdates: 3, Rounds: 60,
		LocalSteps: 100, BatchSize: 32, LearningRate: 3e-3, WeightDecay: 1e-4, Augment: true, Seed: 1, Scaffold: true,
		UpdateTimeout: 2 * time.Minute, ShareTimeout: time.Minute,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.TrainingID == "" || len(c.TrainingID) > 100:
		return errors.New("training id must be 1..100 bytes")
	case c.Owners < 2 || c.Owners > 10:
		return fmt.Errorf("%d owners, want 2..10", c.Owners)
	case c.Threshold < 2 || c.Threshold > c.Owners:
		return fmt.Errorf("threshold %d, want 2..%d", c.Threshold, c.Owners)
	case c.MinUpdates < 2 || c.MinUpdates > c.Owners:
		return fmt.Errorf("min updates %d, want 2..%d", c.MinUpdates, c.Owners)
	case c.Rounds < 1 || c.Rounds > 100000:
		return fmt.Errorf("%d rounds, want 1..100000", c.Rounds)
	case c.LocalSteps < 1 || c.BatchSize < 1 || !(c.LearningRate > 0):
		return errors.New("local steps, batch size and learning rate must be positive")
	case c.UpdateTimeout <= 0 || c.ShareTimeout <= 0:
		return errors.New("timeouts must be positive")
	}
	if d := c.DP; d != nil && (!(d.Clip > 0) || !(d.NoiseMultiplier > 0) || !(d.Delta > 0 && d.Delta < 1)) {
		return errors.New("DP needs a positive clip, a positive noise multiplier and 0 < delta < 1")
	}
	return nil
}

// trainConfig is an owner's local training configuration for a round.
// With DP, the sampling and noise come from a fresh secret seed.
func (c Config) trainConfig(owner, round int, init *model.Float, state *training.AdamState, control *training.Control) training.Config {
	var dp *training.DPSGD
	if c.DP != nil {
		dp = &training.DPSGD{Clip: c.DP.Clip, NoiseMultiplier: c.DP.NoiseMultiplier}
		if _, err := rand.Read(dp.Seed[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
		}
	}
	return training.Config{DP: dp,
		Arch: model.DefaultArchitecture, Steps: c.LocalSteps, BatchSize: c.BatchSize, LearningRate: c.LearningRate, WeightDecay: c.WeightDecay,
		Augment: c.Augment, Seed: c.Seed*1_000_003 + uint64(round)*101 + uint64(owner), Init: init, State: state, Control: control,
		ScheduleOffset: (round - 1) * c.LocalSteps, ScheduleTotal: c.Rounds * c.LocalSteps,
	}
}

func (c Config) marshal() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// ConfigFromLedger reads a training's configuration from its TrainingStart
// and checks that it agrees with the ledger's own fields.
func ConfigFromLedger(rec *ledgerv1.TrainingRecord) (Config, error) {
	var c Config
	st := rec.GetStart()
	if err := json.Unmarshal([]byte(st.GetConfig()), &c); err != nil {
		return c, fmt.Errorf("training %q: configuration: %w", rec.GetTrainingId(), err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("training %q: configuration: %w", rec.GetTrainingId(), err)
	}
	if c.TrainingID != rec.TrainingId || c.Owners != len(st.OwnerKeys) || c.Threshold != int(st.Threshold) ||
		c.MinUpdates != int(st.MinUpdates) || c.Rounds != int(st.Rounds) {
		return c, fmt.Errorf("training %q: the configuration disagrees with the ledger record", rec.TrainingId)
	}
	return c, nil
}

// Epsilon returns the (ε, δ) DP guarantee for an owner with n samples
// (every sample of its shard, against everyone who sees its updates or
// anything computed from them), or 0 without DP.
func (c Config) Epsilon(n int) (float64, error) {
	if c.DP == nil {
		return 0, nil
	}
	q := math.Min(1, float64(c.BatchSize)/float64(n))
	eps, _, err := training.DPEpsilon(q, c.DP.NoiseMultiplier, c.Rounds*c.LocalSteps, c.DP.Delta)
	return eps, err
}

// signDigest is what an owner signs for a message of kind.
func signDigest(kind, trainingID string, round, owner int, parts ...[]byte) []byte {
	h := sha256.New()
	h.Write([]byte("veil/federated/v1/" + kind + "\x00" + trainingID + "\x00"))
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], uint32(round))
	binary.BigEndian.PutUint32(b[4:], uint32(owner))
	h.Write(b[:])
	for _, p := range parts {
		d := sha256.Sum256(p)
		h.Write(d[:])
	}
	return h.Sum(nil)
}

func signParts(key ed25519.PrivateKey, kind, trainingID string, round, owner int, parts ...[]byte) []byte {
	return ed25519.Sign(key, signDigest(kind, trainingID, round, owner, parts...))
}

func verifyParts(pub []byte, sig []byte, kind, trainingID string, round, owner int, parts ...[]byte) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, signDigest(kind, trainingID, round, owner, parts...), sig) {
		return fmt.Errorf("%s of owner %d for round %d: bad signature", kind, owner, round)
	}
	return nil
}
