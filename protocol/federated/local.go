package federated

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// LocalConfig is `veil federated`: every role in one process on an
// embedded ledger, MNIST split among the owners.
type LocalConfig struct {
	Config Config
	Split  SplitConfig
	// Train and Test are the MNIST sets. The last ValidationSize training
	// images are the public validation set; the owners share the rest.
	Train, Test    *dataset.Set
	ValidationSize int
	HE             he.AggregationParameters
	// Dir holds the embedded ledger (Dir/ledger.db, created).
	Dir string
	// ModelPath is where the served model file goes (default Dir/model.json).
	ModelPath string
	// SaltPath, if set, names where the commitment salt of a model file is
	// saved (0600; `veil serve --verifiable` reads it from there).
	SaltPath  func(*model.File) (string, error)
	ChainID   string
	ModelName string
	// LOO computes the owners' shares by leave-one-out (N more trainings of
	// LOORounds rounds, plus one of all owners if LOORounds differs from
	// Config.Rounds); otherwise shares follow the committed sample counts.
	LOO       bool
	LOORounds int
	// Baseline also trains the same model centrally on the pooled shards
	// (model.DefaultTrainConfig, as `veil train`).
	Baseline bool
	// ProvingKey returns the Groth16 keys of the final model, to register
	// it (protocol.Deploy; nil: the model is neither registered nor linked).
	ProvingKey func(context.Context, *model.Model) (*zk.ProvingKey, error)
	// Verifier is the ledger's proof verifier (nil: zkverify).
	Verifier ledger.ProofVerifier
	// Faults plays misbehaving owners (tests and demonstrations).
	Faults map[int]Faults
	// OnRound reports each round of the main training; OnStage each stage.
	OnRound func(RoundReport)
	OnStage func(string)
	Log     *slog.Logger
}

// LocalResult is what `veil federated --json` prints.
type LocalResult struct {
	TrainingID   string         `json:"training_id"`
	HEParameters string         `json:"he_parameters"`
	SecurityBits int            `json:"security_bits"`
	LogQ         float64        `json:"log2_q"`
	Owners       []OwnerSummary `json:"owners"`
	Threshold    int            `json:"threshold"`
	MinUpdates   int            `json:"min_updates"`
	Config       Config         `json:"config"`
	Rounds       []RoundReport  `json:"rounds"`
	// Medians over the rounds.
	MedianRoundSeconds      float64 `json:"median_round_seconds"`
	MedianHEOverheadSeconds float64 `json:"median_he_overhead_seconds"`
	MedianBytesPerParty     float64 `json:"median_bytes_per_party_per_round"`
	// Final model on the 10,000 MNIST test images.
	FloatAccuracy float64         `json:"float_accuracy"`
	FixedAccuracy float64         `json:"fixed_accuracy"`
	Baseline      *BaselineResult `json:"central_baseline,omitempty"`
	Commitment    string          `json:"model_commitment"`
	ModelSHA256   string          `json:"model_sha256"`
	ModelPath     string          `json:"model_path"`
	SaltPath      string          `json:"salt_path,omitempty"`
	TestImages    int             `json:"test_images"`
	// Shares, with the leave-one-out accuracies they come from.
	ShareMethod    string    `json:"share_method"`
	FullValidation float64   `json:"full_validation_accuracy,omitempty"`
	LOOValidation  []float64 `json:"loo_validation_accuracy,omitempty"`
	LOOTrainingIDs []string  `json:"loo_training_ids,omitempty"`
	Trace          *Trace    `json:"trace,omitempty"`
	LedgerEntries  uint64    `json:"ledger_entries"`
	LedgerPath     string    `json:"ledger_path"`
	NodeKey        string    `json:"ledger_node_key"`
	Seconds        float64   `json:"seconds"`

	// Model is the served model file; Salt its commitment salt (secret:
	// save it 0600 where `veil serve` looks for it).
	Model *model.File `json:"-"`
	Salt  zk.Salt     `json:"-"`
}

// OwnerSummary describes one owner's shard and share.
type OwnerSummary struct {
	Samples int `json:"samples"`
	// Epsilon is the owner's DP guarantee (with Config.DP; δ = Config.DP.Delta).
	Epsilon    float64 `json:"dp_epsilon,omitempty"`
	Classes    [10]int `json:"samples_per_class"`
	MerkleRoot string  `json:"merkle_root"`
	ShareBp    uint32  `json:"share_bp"`
}

// BaselineResult is the central training on the pooled shards.
type BaselineResult struct {
	Epochs        int     `json:"epochs"`
	FloatAccuracy float64 `json:"float_accuracy"`
	FixedAccuracy float64 `json:"fixed_accuracy"`
	Seconds       float64 `json:"seconds"`
}

// RunLocal runs `veil federated`: it splits MNIST among the owners, trains
// under multiparty CKKS on an embedded ledger, computes the shares,
// registers and links the model, and traces it back from the ledger.
func RunLocal(ctx context.Context, cfg LocalConfig) (*LocalResult, error) {
	start := time.Now()
	stage := func(s string) {
		if cfg.OnStage != nil {
			cfg.OnStage(s)
		}
	}
	c := cfg.Config
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if cfg.ValidationSize <= 0 {
		cfg.ValidationSize = 5000
	}
	if cfg.Train == nil || cfg.Train.Len() <= cfg.ValidationSize || cfg.Test == nil {
		return nil, errors.New("federated: need a training set larger than the validation set, and a test set")
	}
	if cfg.ChainID == "" {
		cfg.ChainID = ledger.DefaultChainID
	}
	if cfg.ModelName == "" {
		cfg.ModelName = c.TrainingID
	}
	if cfg.Verifier == nil {
		cfg.Verifier = zkverify.New()
	}
	split := cfg.Split
	split.Owners = c.Owners
	shards, validation, err := StandardSplit(cfg.Train, cfg.ValidationSize, split)
	if err != nil {
		return nil, err
	}
	pooled := cfg.Train.Len() - cfg.ValidationSize
	hc, err := he.NewAggregationContext(cfg.HE)
	if err != nil {
		return nil, err
	}
	bits, err := cfg.HE.SecurityBits()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	_, nodeKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	ledgerPath := filepath.Join(cfg.Dir, "ledger.db")
	node, err := embedded.Open(embedded.Config{Path: ledgerPath, ChainID: cfg.ChainID, Verifier: cfg.Verifier, SigningKey: nodeKey})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	coordKey, err := newKeys(1)
	if err != nil {
		return nil, err
	}
	ownerKeys, err := newKeys(c.Owners)
	if err != nil {
		return nil, err
	}
	session := func(id string, conf Config, keys []ed25519.PrivateKey, sh []*dataset.Set, onRound func(RoundReport), faults map[int]Faults) *Session {
		conf.TrainingID = id
		s := &Session{Config: conf, Ledger: node, ChainID: cfg.ChainID, Coordinator: coordKey[0], OwnerKeys: keys, Shards: sh,
			Validation: validation, HE: cfg.HE, ModelName: cfg.ModelName, Log: cfg.Log, OnRound: onRound, Faults: faults}
		if onRound != nil { // the main training: test accuracy every round
			s.Evaluate = func(f *model.Float) float64 { return Accuracy(f, cfg.Test) }
		}
		return s
	}
	res := &LocalResult{TrainingID: c.TrainingID, HEParameters: hc.Fingerprint(), SecurityBits: bits, LogQ: hc.LogQ(),
		Threshold: c.Threshold, MinUpdates: c.MinUpdates, Config: c, LedgerPath: ledgerPath, NodeKey: fmt.Sprintf("%x", nodeKey.Public())}
	for _, sh := range shards {
		var s OwnerSummary
		s.Samples = sh.Len()
		if s.Epsilon, err = c.Epsilon(sh.Len()); err != nil {
			return nil, err
		}
		for _, l := range sh.Labels {
			s.Classes[l]++
		}
		res.Owners = append(res.Owners, s)
	}

	stage(fmt.Sprintf("federated training %s: %d owners, %d rounds", c.TrainingID, c.Owners, c.Rounds))
	onRound := cfg.OnRound
	if onRound == nil {
		onRound = func(RoundReport) {}
	}
	main, err := session(c.TrainingID, c, ownerKeys, shards, onRound, cfg.Faults).Run(ctx)
	if err != nil {
		return nil, err
	}
	res.Rounds = main.Rounds
	res.FloatAccuracy = Accuracy(main.Model, cfg.Test)
	main.Fixed.Name = cfg.ModelName
	main.Fixed.Description = fmt.Sprintf("%s, square activation, 8-bit weights; trained by %d data owners under multiparty CKKS (veil federated, training %s)",
		model.DefaultArchitecture, c.Owners, c.TrainingID)
	res.FixedAccuracy = training.FixedAccuracy(main.Fixed, cfg.Test)
	res.Commitment = main.Commitment.String()
	res.Salt = main.Salt
	for i, o := range main.Owners {
		res.Owners[i].MerkleRoot = fmt.Sprintf("%x", o.Tree().Root())
	}
	res.Model = &model.File{Model: main.Fixed, Training: &model.TrainingInfo{
		Seed: c.Seed, Epochs: epochsOf(c, pooled), BatchSize: c.BatchSize, LearningRate: c.LearningRate, Augment: c.Augment,
		FloatAccuracy: res.FloatAccuracy, FixedAccuracy: res.FixedAccuracy, TestImages: cfg.Test.Len(), CalibrationImages: min(5000, validation.Len()),
	}}

	// Shares.
	samples := make([]uint64, c.Owners)
	for i, sh := range shards {
		samples[i] = uint64(sh.Len())
	}
	var shares []uint32
	var looBp []uint32
	var fullBp uint32
	if cfg.LOO {
		rounds := cfg.LOORounds
		if rounds <= 0 {
			rounds = c.Rounds
		}
		full := training.FixedAccuracy(main.Fixed, validation)
		if rounds != c.Rounds {
			conf := c
			conf.Rounds = rounds
			stage(fmt.Sprintf("leave-one-out reference: all %d owners, %d rounds", c.Owners, rounds))
			ref, err := session(c.TrainingID+"-loo-all", conf, ownerKeys, shards, nil, nil).Run(ctx)
			if err != nil {
				return nil, fmt.Errorf("leave-one-out reference: %w", err)
			}
			full = training.FixedAccuracy(ref.Fixed, validation)
			res.LOOTrainingIDs = append(res.LOOTrainingIDs, c.TrainingID+"-loo-all")
		}
		res.FullValidation = full
		for i := range c.Owners {
			conf := c
			conf.Rounds, conf.Owners = rounds, c.Owners-1
			conf.Threshold, conf.MinUpdates = min(c.Threshold, conf.Owners), min(c.MinUpdates, conf.Owners)
			id := fmt.Sprintf("%s-loo-%d", c.TrainingID, i)
			stage(fmt.Sprintf("leave-one-out %d/%d: without owner %d, %d rounds", i+1, c.Owners, i, rounds))
			keys := slices.Delete(slices.Clone(ownerKeys), i, i+1)
			sh := slices.Delete(slices.Clone(shards), i, i+1)
			r, err := session(id, conf, keys, sh, nil, nil).Run(ctx)
			if err != nil {
				return nil, fmt.Errorf("leave-one-out without owner %d: %w", i, err)
			}
			res.LOOValidation = append(res.LOOValidation, training.FixedAccuracy(r.Fixed, validation))
			res.LOOTrainingIDs = append(res.LOOTrainingIDs, id)
		}
		shares, res.ShareMethod = LOOShares(full, res.LOOValidation, samples)
		for _, a := range res.LOOValidation {
			looBp = append(looBp, bp(a))
		}
		fullBp = bp(full)
	} else {
		w := make([]float64, len(samples))
		for i, s := range samples {
			w[i] = float64(s)
		}
		shares, res.ShareMethod = sharesFromWeights(w), ShareMethodSamples
	}
	for i := range res.Owners {
		res.Owners[i].ShareBp = shares[i]
	}

	if cfg.Baseline {
		stage("central baseline on the pooled shards (veil train's configuration)")
		t0 := time.Now()
		bc := training.DefaultConfig()
		pool := &dataset.Set{}
		for _, sh := range shards {
			pool.Images = append(pool.Images, sh.Images...)
			pool.Labels = append(pool.Labels, sh.Labels...)
		}
		f, err := training.Train(ctx, pool, bc)
		if err != nil {
			return nil, fmt.Errorf("central baseline: %w", err)
		}
		m, err := Quantize(f, "central", validation)
		if err != nil {
			return nil, err
		}
		res.Baseline = &BaselineResult{Epochs: bc.Epochs, FloatAccuracy: Accuracy(f, cfg.Test), FixedAccuracy: training.FixedAccuracy(m, cfg.Test), Seconds: time.Since(t0).Seconds()}
	}

	if cfg.ProvingKey != nil {
		stage("registering the model and linking it to its training")
		pk, err := cfg.ProvingKey(ctx, main.Fixed)
		if err != nil {
			return nil, fmt.Errorf("proving keys: %w", err)
		}
		dep, err := protocol.Deploy(ctx, protocol.DeployOptions{Model: main.Fixed, Salt: main.Salt, Keys: pk, Ledger: node, ChainID: cfg.ChainID,
			Owner: coordKey[0], Server: coordKey[0], Log: cfg.Log})
		if err != nil {
			return nil, err
		}
		if dep.Commitment != main.Commitment {
			return nil, fmt.Errorf("the registered commitment %s is not the last round's %s", dep.Commitment, main.Commitment)
		}
		if err := linkModel(ctx, node, cfg.ChainID, coordKey[0], cfg.ModelName, c.TrainingID, shares, res.ShareMethod, looBp, fullBp); err != nil {
			return nil, err
		}
		reader := &trust.Reader{API: node, Anchor: trust.Anchor{ChainID: cfg.ChainID, NodeKey: nodeKey.Public().(ed25519.PublicKey)}}
		if res.Trace, err = TraceModel(ctx, reader, cfg.ModelName); err != nil {
			return nil, err
		}
		if !res.Trace.OK() {
			return nil, errors.New("the trace of the registered model fails its checks")
		}
	}
	cp, err := node.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	res.LedgerEntries = cp.Size
	if cfg.ModelPath == "" {
		cfg.ModelPath = filepath.Join(cfg.Dir, "model.json")
	}
	if err := res.Model.Save(cfg.ModelPath); err != nil {
		return nil, err
	}
	res.ModelPath = cfg.ModelPath
	res.TestImages = cfg.Test.Len()
	if cfg.SaltPath != nil {
		sp, err := cfg.SaltPath(res.Model)
		if err != nil {
			return nil, err
		}
		if err := res.Salt.Save(sp); err != nil {
			return nil, err
		}
		res.SaltPath = sp
	}
	res.ModelSHA256 = res.Model.SHA256
	res.summarise()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

func bp(a float64) uint32 { return uint32(math.Round(a * 10000)) }

// epochsOf is the training budget in epochs of the pooled data.
func epochsOf(c Config, pooled int) int {
	return int(math.Round(float64(c.Rounds*c.Owners*c.LocalSteps*c.BatchSize) / float64(pooled)))
}

// RoundsForEpochs is the number of rounds whose local work adds up to the
// given epochs over the pooled data.
func RoundsForEpochs(c Config, pooled, epochs int) int {
	return max(1, int(math.Ceil(float64(epochs*pooled)/float64(c.Owners*c.LocalSteps*c.BatchSize))))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *LocalResult) summarise() {
	var secs, heo, bytes []float64
	for _, rd := range r.Rounds {
		secs = append(secs, rd.Seconds)
		heo = append(heo, rd.HEOverheadSeconds)
		for _, o := range rd.Owners {
			bytes = append(bytes, float64(o.BytesSent+o.BytesReceived))
		}
	}
	r.MedianRoundSeconds, r.MedianHEOverheadSeconds, r.MedianBytesPerParty = median(secs), median(heo), median(bytes)
}
