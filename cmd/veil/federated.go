package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol/federated"
	"github.com/veil-project/veil/zk"
)

// fedOptions are the training flags shared by 'veil federated' and its
// separate-process roles.
type fedOptions struct {
	parties, threshold, minUpdates, rounds, epochs int
	localSteps, batch                              int
	lr, majority, dpNoise, dpClip, dpDelta         float64
	split, trainingID                              string
	augment, scaffold                              bool
	seed                                           uint64
}

const fedValidation = 5000

func (o *fedOptions) bind(fl *pflag.FlagSet) {
	fl.IntVar(&o.parties, "parties", 4, "data owners")
	fl.IntVar(&o.threshold, "threshold", 0, "owners needed to decrypt (default parties-1)")
	fl.IntVar(&o.minUpdates, "min-updates", 0, "fewest updates an aggregate may sum (default parties-1)")
	fl.StringVar(&o.split, "split", "noniid", "noniid (each owner mostly 2-3 digits) or iid")
	fl.Float64Var(&o.majority, "majority", 0.9, "non-IID: fraction of an owner's samples from its own digits")
	fl.IntVar(&o.rounds, "rounds", 0, "rounds (default: as many as --epochs of the pooled data)")
	fl.IntVar(&o.epochs, "epochs", 50, "training budget in epochs of the pooled data, when --rounds is not given")
	fl.IntVar(&o.localSteps, "local-steps", 100, "local mini-batches per owner per round")
	fl.IntVar(&o.batch, "batch", 32, "local mini-batch size")
	fl.Float64Var(&o.lr, "lr", 3e-3, "Adam learning rate (one cosine schedule over all rounds)")
	fl.BoolVar(&o.augment, "augment", true, "random affine distortions of the training images")
	fl.BoolVar(&o.scaffold, "scaffold", true, "SCAFFOLD drift correction (doubles the update)")
	fl.Uint64Var(&o.seed, "seed", 1, "seed of the split, the initial model and local training")
	fl.StringVar(&o.trainingID, "training-id", "", "training id (default fl-<unix time>)")
	fl.Float64Var(&o.dpNoise, "dp-noise", 0, "DP-SGD noise multiplier on every owner's local training (0: no DP)")
	fl.Float64Var(&o.dpClip, "dp-clip", 1, "DP-SGD per-example gradient clip norm")
	fl.Float64Var(&o.dpDelta, "dp-delta", 1e-5, "DP delta of the stated epsilon")
}

// config turns the flags into a training configuration for a training set
// of trainLen images (the last fedValidation are the validation set).
func (o *fedOptions) config(trainLen int) (federated.Config, federated.SplitConfig, error) {
	if o.split != "noniid" && o.split != "iid" {
		return federated.Config{}, federated.SplitConfig{}, usageError("--split: want noniid or iid, not %q", o.split)
	}
	if o.trainingID == "" {
		o.trainingID = fmt.Sprintf("fl-%d", time.Now().Unix())
	}
	c := federated.DefaultConfig(o.trainingID)
	c.Owners, c.Threshold, c.MinUpdates = o.parties, o.threshold, o.minUpdates
	c.LocalSteps, c.BatchSize, c.LearningRate, c.Augment, c.Scaffold, c.Seed = o.localSteps, o.batch, o.lr, o.augment, o.scaffold, o.seed
	if o.dpNoise > 0 {
		c.DP = &federated.DPConfig{Clip: o.dpClip, NoiseMultiplier: o.dpNoise, Delta: o.dpDelta}
	}
	if c.Threshold == 0 {
		c.Threshold = max(2, o.parties-1)
	}
	if c.MinUpdates == 0 {
		c.MinUpdates = max(2, o.parties-1)
	}
	c.Rounds = o.rounds
	if c.Rounds == 0 && o.localSteps > 0 && o.batch > 0 && o.parties > 0 && o.epochs > 0 {
		c.Rounds = federated.RoundsForEpochs(c, trainLen-fedValidation, o.epochs)
	}
	if err := c.Validate(); err != nil {
		return c, federated.SplitConfig{}, usageError("%v", err)
	}
	return c, federated.SplitConfig{Owners: o.parties, NonIID: o.split == "noniid", Majority: o.majority, Seed: o.seed}, nil
}

func loadMNIST() (train, test *dataset.Set, err error) {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, nil, err
	}
	if train, err = dataset.LoadTrain(dir); err != nil {
		return nil, nil, err
	}
	if test, err = dataset.LoadTest(dir); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func newFederatedCmd(g *globalOptions) *cobra.Command {
	var (
		o                            fedOptions
		looRounds                    int
		shares, out                  string
		asJSON, baseline, noRegister bool
	)
	cmd := &cobra.Command{
		Use:   "federated",
		Short: "Train one model on several owners' private MNIST shards under multiparty CKKS",
		Long: `Split MNIST among --parties data owners (non-IID: each owner mostly 2-3 digits),
train the served network (784-32-128-sq-10) by federated averaging under
multiparty CKKS (collective key, 3-of-4 threshold decryption of the sum only)
with every step on an embedded ledger, compute the owners' fee shares
(leave-one-out on a public validation set), register and link the model, and
trace it back from the ledger. Prints per-round test accuracy, bytes per party
and time; writes a model file that 'veil serve --model' serves as is.

The same roles as separate processes: 'veil federated aggregate' and
'veil federated party' (see their help).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if shares != "loo" && shares != "samples" {
				return usageError("--shares: want loo or samples, not %q", shares)
			}
			train, test, err := loadMNIST()
			if err != nil {
				return err
			}
			c, split, err := o.config(train.Len())
			if err != nil {
				return err
			}
			trainingID := c.TrainingID
			work, err := g.ensureDataDir("federated", trainingID)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(work, "model.json")
			}
			w := cmd.OutOrStdout()
			lc := federated.LocalConfig{
				Config: c, Split: split, Train: train, Test: test, ValidationSize: fedValidation, HE: he.DefaultAggregationParameters,
				Dir: work, ModelPath: out, ModelName: trainingID, LOO: shares == "loo", LOORounds: looRounds, Baseline: baseline,
				OnStage: func(s string) { fmt.Fprintf(os.Stderr, "veil: %s\n", s) },
				OnRound: func(r federated.RoundReport) {
					if g.quiet {
						return
					}
					var b int64
					for _, o := range r.Owners {
						b = max(b, o.BytesSent+o.BytesReceived)
					}
					fmt.Fprintf(os.Stderr, "round %3d: test accuracy %.2f%%  updates %v  decrypted by %v (%d subsets agree)  %.2f s (HE %.2f s)  %.1f MB per party\n",
						r.Round, 100*r.Accuracy, r.Updates, r.Decryptors, r.Subsets, r.Seconds, r.HEOverheadSeconds, float64(b)/1e6)
				},
			}
			if !noRegister {
				lc.ProvingKey = func(ctx context.Context, m *model.Model) (*zk.ProvingKey, error) {
					return g.keys(ctx, m, proofBatch, true)
				}
			}
			res, err := federated.RunLocal(cmd.Context(), lc)
			if err != nil {
				return err
			}
			// The salt goes where 'veil serve --verifiable' looks for it.
			if sp, err := g.saltPath(res.Model); err == nil {
				if err := res.Salt.Save(sp); err == nil && !g.quiet {
					fmt.Fprintf(os.Stderr, "veil: the model's commitment salt is in %s (secret: the server needs it to prove)\n", sp)
				}
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printFederated(w, res)
			return nil
		},
	}
	fl := cmd.Flags()
	o.bind(fl)
	fl.StringVar(&shares, "shares", "loo", "owners' fee shares: loo (leave-one-out, N more trainings) or samples")
	fl.IntVar(&looRounds, "loo-rounds", 0, "rounds of each leave-one-out training (default --rounds)")
	fl.BoolVar(&baseline, "baseline", false, "also train the same model centrally on the pooled shards (about 4 minutes)")
	fl.BoolVar(&noRegister, "no-register", false, "do not register the model (no Groth16 setup)")
	fl.StringVar(&out, "out", "", "model file (default <data>/federated/<id>/model.json)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(newFederatedPartyCmd(g), newFederatedAggregateCmd(g), newFederatedKeyCmd(g))
	return cmd
}

func printFederated(w interface{ Write([]byte) (int, error) }, r *federated.LocalResult) {
	fmt.Fprintf(w, "training %s: %d owners, %d-of-%d decryption, aggregates of >= %d updates, %d rounds\n",
		r.TrainingID, len(r.Owners), r.Threshold, len(r.Owners), r.MinUpdates, len(r.Rounds))
	fmt.Fprintf(w, "HE: %s (%d-bit, log2 Q = %.0f)\n", r.HEParameters, r.SecurityBits, r.LogQ)
	for i, o := range r.Owners {
		var top []string
		for d, n := range o.Classes {
			if n*4 > o.Samples/len(o.Classes) {
				top = append(top, fmt.Sprint(d))
			}
		}
		dp := ""
		if o.Epsilon > 0 {
			dp = fmt.Sprintf(", DP ε = %.2f (δ = %g)", o.Epsilon, r.Config.DP.Delta)
		}
		fmt.Fprintf(w, "owner %d: %5d samples, mostly digits %s, dataset root %s…, share %5.2f%%%s\n",
			i, o.Samples, strings.Join(top, ","), o.MerkleRoot[:16], float64(o.ShareBp)/100, dp)
	}
	fmt.Fprintf(w, "per round (median of %d): %.2f s, HE overhead %.3f s, %.2f MB per party\n",
		len(r.Rounds), r.MedianRoundSeconds, r.MedianHEOverheadSeconds, r.MedianBytesPerParty/1e6)
	fmt.Fprintf(w, "final model on the 10,000 MNIST test images: float %.2f%%, fixed point %.2f%%\n", 100*r.FloatAccuracy, 100*r.FixedAccuracy)
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "central baseline (%d epochs on the pooled shards): float %.2f%%, fixed point %.2f%% (%.0f s)\n",
			b.Epochs, 100*b.FloatAccuracy, 100*b.FixedAccuracy, b.Seconds)
	}
	fmt.Fprintf(w, "shares: %s\n", r.ShareMethod)
	if len(r.LOOValidation) > 0 {
		fmt.Fprintf(w, "validation accuracy with all owners %.2f%%, without each owner %v\n", 100*r.FullValidation, pct(r.LOOValidation))
	}
	fmt.Fprintf(w, "model %s written to %s (sha256 %s…), commitment %s\n", r.TrainingID, r.ModelPath, r.ModelSHA256[:16], r.Commitment)
	if t := r.Trace; t != nil {
		pass := 0
		for _, c := range t.Checks {
			if c.OK {
				pass++
			}
		}
		fmt.Fprintf(w, "trace from the ledger: %d entries, %d checks, %d passed\n", t.Entries, len(t.Checks), pass)
	}
	fmt.Fprintf(w, "ledger: %d entries in %s (node key %s…); done in %.0f s\n", r.LedgerEntries, r.LedgerPath, r.NodeKey[:16], r.Seconds)
}

func pct(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.2f%%", 100*x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func newFederatedKeyCmd(g *globalOptions) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make (or show) a party's ed25519 signing key and print its public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, created, err := g.federatedKey(name)
			if err != nil {
				return err
			}
			if created && !g.quiet {
				fmt.Fprintf(os.Stderr, "veil: created key %s\n", name)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%x\n", k.Public())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "party", "key name (<data>/federated/keys/<name>.key, 0600)")
	return cmd
}

// federatedKey loads or creates <data>/federated/keys/<name>.key.
func (g *globalOptions) federatedKey(name string) (ed25519.PrivateKey, bool, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, false, usageError("--key: %q is not a key name", name)
	}
	d, err := g.ensureDataDir("federated", "keys")
	if err != nil {
		return nil, false, err
	}
	return ledger.LoadOrCreateNodeKey(filepath.Join(d, name+".key"))
}

func newFederatedAggregateCmd(g *globalOptions) *cobra.Command {
	var (
		o                       fedOptions
		ledgerAddr, listen, key string
		ownerKeys               []string
		chainID, out            string
	)
	cmd := &cobra.Command{
		Use:   "aggregate",
		Short: "Run the aggregator (coordinator) of a training as its own process",
		Long: `Run the coordinator: record the training on the ledger, serve the owners'
gRPC service on --listen, sum their encrypted updates, collect the decryption
shares and record every round. The owners run 'veil federated party'; the
ledger is a node ('veil ledger serve'). Example with 4 owners:

  veil ledger serve &
  for i in 0 1 2 3; do veil federated key --name owner$i; done   # prints each public key
  veil federated aggregate --training-id t1 --owner-keys K0,K1,K2,K3 --rounds 20 &
  for i in 0 1 2 3; do veil federated party --training-id t1 --index $i --key owner$i & done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.trainingID == "" {
				return usageError("--training-id is required (the owners name the same one)")
			}
			var pubs []ed25519.PublicKey
			for _, h := range ownerKeys {
				b, err := hex.DecodeString(strings.TrimSpace(h))
				if err != nil || len(b) != ed25519.PublicKeySize {
					return usageError("--owner-keys: %q is not a hex ed25519 public key", h)
				}
				pubs = append(pubs, b)
			}
			if len(pubs) != o.parties {
				return usageError("--owner-keys: %d keys for --parties %d", len(pubs), o.parties)
			}
			train, _, err := loadMNIST()
			if err != nil {
				return err
			}
			c, split, err := o.config(train.Len())
			if err != nil {
				return err
			}
			_, validation, err := federated.StandardSplit(train, fedValidation, split)
			if err != nil {
				return err
			}
			k, _, err := g.federatedKey(key)
			if err != nil {
				return err
			}
			api, err := query.Dial(ledgerAddr)
			if err != nil {
				return err
			}
			defer api.Close()
			lis, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			fmt.Fprintf(os.Stderr, "veil: coordinator of %s on %s, %d rounds\n", c.TrainingID, lis.Addr(), c.Rounds)
			res, salt, err := federated.ServeCoordinator(cmd.Context(), federated.CoordinatorConfig{
				Config: c, Ledger: api, ChainID: chainID, Key: k, OwnerKeys: pubs, Validation: validation,
				HE: he.DefaultAggregationParameters, ModelName: c.TrainingID,
				OnRound: func(r federated.RoundStats) {
					fmt.Fprintf(os.Stderr, "round %3d: updates %v, decrypted by %v (%d subsets agree), validation %.2f%%, %.2f s\n",
						r.Round, r.Updates, r.Decryptors, r.Subsets, 100*r.Validation, r.Seconds)
				},
			}, lis)
			if err != nil {
				return err
			}
			mf := &model.File{Model: res.Fixed}
			if out == "" {
				out = c.TrainingID + ".json"
			}
			if err := mf.Save(out); err != nil {
				return err
			}
			if sp, err := g.saltPath(mf); err == nil {
				if err := salt.Save(sp); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "model %s written to %s, commitment %s\n", c.TrainingID, out, res.Commitment)
			return nil
		},
	}
	fl := cmd.Flags()
	o.bind(fl)
	fl.StringVar(&ledgerAddr, "ledger", "127.0.0.1:7070", "ledger node gRPC address")
	fl.StringVar(&chainID, "chain-id", ledger.DefaultChainID, "ledger chain id")
	fl.StringVar(&listen, "listen", "127.0.0.1:7500", "address of the coordinator's gRPC service")
	fl.StringVar(&key, "key", "coordinator", "the coordinator's key name (veil federated key)")
	fl.StringSliceVar(&ownerKeys, "owner-keys", nil, "the owners' public keys, in owner order (hex, comma-separated)")
	fl.StringVar(&out, "out", "", "model file (default <training id>.json)")
	return cmd
}

func newFederatedPartyCmd(g *globalOptions) *cobra.Command {
	var (
		o                                   fedOptions
		ledgerAddr, coordinator, key, chain string
		index                               int
	)
	cmd := &cobra.Command{
		Use:   "party",
		Short: "Run one data owner of a training as its own process",
		Long: `Run data owner --index: commit its shard of MNIST (the split flags must be the
aggregator's) to the ledger, take part in the key setup, train locally every
round and send only encrypted updates, and decrypt only the recorded sum.
See 'veil federated aggregate --help' for a full example.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.trainingID == "" {
				return usageError("--training-id is required")
			}
			train, _, err := loadMNIST()
			if err != nil {
				return err
			}
			_, split, err := o.config(train.Len())
			if err != nil {
				return err
			}
			shards, validation, err := federated.StandardSplit(train, fedValidation, split)
			if err != nil {
				return err
			}
			if index < 0 || index >= len(shards) {
				return usageError("--index %d: want 0..%d", index, len(shards)-1)
			}
			k, _, err := g.federatedKey(key)
			if err != nil {
				return err
			}
			api, err := query.Dial(ledgerAddr)
			if err != nil {
				return err
			}
			defer api.Close()
			owner, err := federated.RunRemoteOwner(cmd.Context(), federated.OwnerConfig{
				Index: index, Key: k, TrainingID: o.trainingID, Shard: shards[index], Ledger: api, ChainID: chain,
				HE: he.DefaultAggregationParameters, Validation: validation,
			}, coordinator)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, s := range owner.Stats() {
				fmt.Fprintf(w, "round %3d: trained %.2f s, HE %.3f s, sent %d B, received %d B\n", s.Round, s.TrainSeconds, s.HESeconds, s.BytesSent, s.BytesReceived)
			}
			fmt.Fprintf(w, "owner %d: final model %x (checked against the ledger)\n", index, federated.ModelDigest(owner.Model()))
			return nil
		},
	}
	fl := cmd.Flags()
	o.bind(fl)
	fl.StringVar(&ledgerAddr, "ledger", "127.0.0.1:7070", "ledger node gRPC address")
	fl.StringVar(&chain, "chain-id", ledger.DefaultChainID, "ledger chain id")
	fl.StringVar(&coordinator, "coordinator", "127.0.0.1:7500", "the coordinator's gRPC address")
	fl.StringVar(&key, "key", "party", "this owner's key name (veil federated key)")
	fl.IntVar(&index, "index", 0, "this owner's index in the training (0-based)")
	return cmd
}
