package federated

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/model"
)

// ValidationSize is the number of MNIST training images, the last ones,
// that `veil federated` keeps as the public validation set.
const ValidationSize = 5000

// Options are the training settings of `veil federated` and its
// separate-process roles, as given on the command line: zero Threshold,
// MinUpdates and Rounds take defaults, and TrainingID defaults to
// fl-<unix time>.
type Options struct {
	Parties, Threshold, MinUpdates int
	// Rounds, when zero, is as many as Epochs of the pooled data.
	Rounds, Epochs    int
	LocalSteps, Batch int
	LR                float64
	// Split is "noniid" (each owner mostly its own digits, Majority of its
	// samples) or "iid".
	Split    string
	Majority float64
	// DPNoise > 0 turns on DP-SGD with DPClip and DPDelta.
	DPNoise, DPClip, DPDelta float64
	TrainingID               string
	Augment, Scaffold        bool
	Seed                     uint64
}

// Config turns the options into a training configuration for a training
// set of trainLen images (the last ValidationSize are the validation set)
// and its split; the error is about the options.
func (o *Options) Config(trainLen int) (Config, SplitConfig, error) {
	if o.Split != "noniid" && o.Split != "iid" {
		return Config{}, SplitConfig{}, fmt.Errorf("--split: want noniid or iid, not %q", o.Split)
	}
	if o.TrainingID == "" {
		o.TrainingID = fmt.Sprintf("fl-%d", time.Now().Unix())
	}
	c := DefaultConfig(o.TrainingID)
	c.Owners, c.Threshold, c.MinUpdates = o.Parties, o.Threshold, o.MinUpdates
	c.LocalSteps, c.BatchSize, c.LearningRate, c.Augment, c.Scaffold, c.Seed = o.LocalSteps, o.Batch, o.LR, o.Augment, o.Scaffold, o.Seed
	if o.DPNoise > 0 {
		c.DP = &DPConfig{Clip: o.DPClip, NoiseMultiplier: o.DPNoise, Delta: o.DPDelta}
	}
	if c.Threshold == 0 {
		c.Threshold = max(2, o.Parties-1)
	}
	if c.MinUpdates == 0 {
		c.MinUpdates = max(2, o.Parties-1)
	}
	c.Rounds = o.Rounds
	if c.Rounds == 0 && o.LocalSteps > 0 && o.Batch > 0 && o.Parties > 0 && o.Epochs > 0 {
		c.Rounds = RoundsForEpochs(c, trainLen-ValidationSize, o.Epochs)
	}
	if err := c.Validate(); err != nil {
		return c, SplitConfig{}, err
	}
	return c, SplitConfig{Owners: o.Parties, NonIID: o.Split == "noniid", Majority: o.Majority, Seed: o.Seed}, nil
}

// ParseOwnerKeys reads the owners' public keys (hex), one per party.
func ParseOwnerKeys(keys []string, parties int) ([]ed25519.PublicKey, error) {
	var pubs []ed25519.PublicKey
	for _, h := range keys {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("--owner-keys: %q is not a hex ed25519 public key", h)
		}
		pubs = append(pubs, b)
	}
	if len(pubs) != parties {
		return nil, fmt.Errorf("--owner-keys: %d keys for --parties %d", len(pubs), parties)
	}
	return pubs, nil
}

// AggregatorOptions configure the coordinator as its own process.
type AggregatorOptions struct {
	Config Config
	Split  SplitConfig
	// Train is MNIST's training set (split as StandardSplit does).
	Train *dataset.Set
	// Ledger is the ledger node's gRPC address, Listen the coordinator's.
	Ledger, ChainID, Listen string
	Key                     ed25519.PrivateKey
	OwnerKeys               []ed25519.PublicKey
	// Out is the model file (default <training id>.json); SaltPath names
	// where its commitment salt goes.
	Out      string
	SaltPath func(*model.File) (string, error)
	// Log gets a line when the service is up and one per round.
	Log io.Writer
}

// RunAggregator runs the coordinator of a training with owners in other
// processes (ServeCoordinator) until the training ends.
func RunAggregator(ctx context.Context, o AggregatorOptions) (*CoordinatorReport, error) {
	_, validation, err := StandardSplit(o.Train, ValidationSize, o.Split)
	if err != nil {
		return nil, err
	}
	api, err := query.Dial(o.Ledger)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	if o.Out == "" {
		o.Out = o.Config.TrainingID + ".json"
	}
	fmt.Fprintf(o.Log, "veil: coordinator of %s on %s, %d rounds\n", o.Config.TrainingID, lis.Addr(), o.Config.Rounds)
	return ServeCoordinator(ctx, CoordinatorConfig{
		Config: o.Config, Ledger: api, ChainID: o.ChainID, Key: o.Key, OwnerKeys: o.OwnerKeys, Validation: validation,
		HE: he.DefaultAggregationParameters, ModelName: o.Config.TrainingID,
		OnRound: func(r RoundStats) { fmt.Fprintln(o.Log, r.Line()) },
	}, lis, o.Out, o.SaltPath)
}

// PartyOptions configure one data owner as its own process.
type PartyOptions struct {
	TrainingID string
	Split      SplitConfig
	// Train is MNIST's training set; the owner's shard is StandardSplit's
	// Index-th.
	Train *dataset.Set
	Index int
	Key   ed25519.PrivateKey
	// Ledger and Coordinator are gRPC addresses.
	Ledger, ChainID, Coordinator string
}

// RunParty takes part in a training as owner o.Index (RunRemoteOwner).
func RunParty(ctx context.Context, o PartyOptions) (*OwnerReport, error) {
	shards, validation, err := StandardSplit(o.Train, ValidationSize, o.Split)
	if err != nil {
		return nil, err
	}
	if o.Index < 0 || o.Index >= len(shards) {
		return nil, fmt.Errorf("index %d: want 0..%d", o.Index, len(shards)-1)
	}
	api, err := query.Dial(o.Ledger)
	if err != nil {
		return nil, err
	}
	defer api.Close()
	owner, err := RunRemoteOwner(ctx, OwnerConfig{
		Index: o.Index, Key: o.Key, TrainingID: o.TrainingID, Shard: shards[o.Index], Ledger: api, ChainID: o.ChainID,
		HE: he.DefaultAggregationParameters, Validation: validation,
	}, o.Coordinator)
	if err != nil {
		return nil, err
	}
	return owner.Report(), nil
}

// LogTo sends the stage and round lines of the training to w.
func (c *LocalConfig) LogTo(w io.Writer) {
	c.OnStage = func(s string) { fmt.Fprintf(w, "veil: %s\n", s) }
	c.OnRound = func(r RoundReport) { fmt.Fprintln(w, r.Line()) }
}

// CheckKeyName tells whether name can name a party's key file.
func CheckKeyName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("key name %q: want a plain file name", name)
	}
	return nil
}

// PartyKey loads or creates a party's ed25519 signing key,
// <dataDir>/federated/keys/<name>.key (0600); created tells which.
func PartyKey(dataDir, name string) (key ed25519.PrivateKey, created bool, err error) {
	if err := CheckKeyName(name); err != nil {
		return nil, false, err
	}
	d := filepath.Join(dataDir, "federated", "keys")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	return ledger.LoadOrCreateNodeKey(filepath.Join(d, name+".key"))
}

// KeyInfo is a party key's name and public key.
type KeyInfo struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

// KeyInfoOf describes key.
func KeyInfoOf(name string, key ed25519.PrivateKey) KeyInfo {
	return KeyInfo{Name: name, PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}
}

// WriteText prints the public key (hex).
func (k KeyInfo) WriteText(w io.Writer) error {
	_, err := fmt.Fprintln(w, k.PublicKey)
	return err
}
