package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/protocol/federated"
	"github.com/veil-project/veil/zk"
)

// fedOptions are the training flags shared by 'veil federated' and its
// separate-process roles.
type fedOptions struct{ federated.Options }

func (o *fedOptions) bind(fl *pflag.FlagSet) {
	fl.IntVar(&o.Parties, "parties", 4, "data owners")
	fl.IntVar(&o.Threshold, "threshold", 0, "owners needed to decrypt (default parties-1)")
	fl.IntVar(&o.MinUpdates, "min-updates", 0, "fewest updates an aggregate may sum (default parties-1)")
	fl.StringVar(&o.Split, "split", "noniid", "noniid (each owner mostly 2-3 digits) or iid")
	fl.Float64Var(&o.Majority, "majority", 0.9, "non-IID: fraction of an owner's samples from its own digits")
	fl.IntVar(&o.Rounds, "rounds", 0, "rounds (default: as many as --epochs of the pooled data)")
	fl.IntVar(&o.Epochs, "epochs", 50, "training budget in epochs of the pooled data, when --rounds is not given")
	fl.IntVar(&o.LocalSteps, "local-steps", 100, "local mini-batches per owner per round")
	fl.IntVar(&o.Batch, "batch", 32, "local mini-batch size")
	fl.Float64Var(&o.LR, "lr", 3e-3, "Adam learning rate (one cosine schedule over all rounds)")
	fl.BoolVar(&o.Augment, "augment", true, "random affine distortions of the training images")
	fl.BoolVar(&o.Scaffold, "scaffold", true, "SCAFFOLD drift correction (doubles the update)")
	fl.Uint64Var(&o.Seed, "seed", 1, "seed of the split, the initial model and local training")
	fl.StringVar(&o.TrainingID, "training-id", "", "training id (default fl-<unix time>)")
	fl.Float64Var(&o.DPNoise, "dp-noise", 0, "DP-SGD noise multiplier on every owner's local training (0: no DP)")
	fl.Float64Var(&o.DPClip, "dp-clip", 1, "DP-SGD per-example gradient clip norm")
	fl.Float64Var(&o.DPDelta, "dp-delta", 1e-5, "DP delta of the stated epsilon")
}

// config is federated.Options.Config; its errors are usage errors.
func (o *fedOptions) config(trainLen int) (federated.Config, federated.SplitConfig, error) {
	c, split, err := o.Options.Config(trainLen)
	if err != nil {
		return c, split, usageError("%v", err)
	}
	return c, split, nil
}

// processFlags are the flags of the separate-process roles: the training's,
// the ledger node's and the role's own key.
type processFlags struct {
	fedOptions
	ledger, chainID, key string
}

func (p *processFlags) bind(fl *pflag.FlagSet, key, keyHelp string) {
	p.fedOptions.bind(fl)
	fl.StringVar(&p.ledger, "ledger", "127.0.0.1:7070", "ledger node gRPC address")
	fl.StringVar(&p.chainID, "chain-id", ledger.DefaultChainID, "ledger chain id")
	fl.StringVar(&p.key, "key", key, keyHelp)
}

// load reads MNIST's training set, the training configuration and the
// role's key.
func (p *processFlags) load(g *globalOptions) (train *dataset.Set, c federated.Config, split federated.SplitConfig, key ed25519.PrivateKey, err error) {
	if train, err = dataset.MNISTTrain(); err != nil {
		return
	}
	if c, split, err = p.config(train.Len()); err != nil {
		return
	}
	key, _, err = g.federatedKey(p.key)
	return
}

func newFederatedCmd(g *globalOptions) *cobra.Command {
	var (
		o                    fedOptions
		looRounds            int
		shares, out          string
		baseline, noRegister bool
	)
	cmd := &cobra.Command{
		Use:   "federated",
		Short: "Train one model on several owners' private MNIST shards under multiparty CKKS",
		Long: `Split MNIST among --parties data owners (non-IID: each owner mostly 2-3 digits;
the last 5,000 training images are the public validation set), train the
served network (784-32-128-sq-10) by federated averaging with SCAFFOLD under
multiparty CKKS (collective key; any 3 of 4 owners decrypt, and only the
recorded sum of at least 3 updates), with every step on an embedded ledger;
compute the owners' fee shares (leave-one-out on the validation set), register
the model and link it to its training, and trace it back from the ledger.
Prints per-round test accuracy, bytes per party and time; writes a model file
that 'veil serve --model' serves as is, and its commitment salt where
'veil serve --verifiable' looks for it.

The same roles as separate processes: 'veil federated aggregate' and
'veil federated party' (see their help). docs/training.md has the protocol.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if shares != "loo" && shares != "samples" {
			return nil, usageError("--shares: want loo or samples, not %q", shares)
		}
		train, test, err := dataset.MNIST()
		if err != nil {
			return nil, err
		}
		c, split, err := o.config(train.Len())
		if err != nil {
			return nil, err
		}
		work, err := g.store().Ensure("federated", c.TrainingID)
		if err != nil {
			return nil, err
		}
		lc := federated.LocalConfig{
			Config: c, Split: split, Train: train, Test: test, ValidationSize: federated.ValidationSize, HE: he.DefaultAggregationParameters,
			Dir: work, ModelPath: out, ModelName: c.TrainingID, LOO: shares == "loo", LOORounds: looRounds, Baseline: baseline,
			SaltPath: g.store().SaltPath,
		}
		if !g.quiet {
			lc.LogTo(os.Stderr)
		}
		if !noRegister {
			lc.ProvingKey = func(ctx context.Context, m *model.Model) (*zk.ProvingKey, error) {
				return g.store().Keys(ctx, m, protocol.ProofBatch, true)
			}
		}
		return federated.RunLocal(cmd.Context(), lc)
	})
	fl := cmd.Flags()
	o.bind(fl)
	fl.StringVar(&shares, "shares", "loo", "owners' fee shares: loo (leave-one-out, N more trainings) or samples")
	fl.IntVar(&looRounds, "loo-rounds", 0, "rounds of each leave-one-out training (default --rounds)")
	fl.BoolVar(&baseline, "baseline", false, "also train the same model centrally on the pooled shards (as veil train)")
	fl.BoolVar(&noRegister, "no-register", false, "do not register the model (no Groth16 setup)")
	fl.StringVar(&out, "out", "", "model file (default <data>/federated/<id>/model.json)")
	cmd.AddCommand(newFederatedPartyCmd(g), newFederatedAggregateCmd(g), newFederatedKeyCmd(g), newFederatedTraceCmd())
	return cmd
}

func newFederatedKeyCmd(g *globalOptions) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make (or show) a party's ed25519 signing key and print its public key",
		Args:  cobra.NoArgs,
	}
	withResult(cmd, func(*cobra.Command, []string) (result, error) {
		k, created, err := g.federatedKey(name)
		if err != nil {
			return nil, err
		}
		if created && !g.quiet {
			fmt.Fprintf(os.Stderr, "veil: created key %s\n", name)
		}
		return federated.KeyInfoOf(name, k), nil
	})
	cmd.Flags().StringVar(&name, "name", "party", "key name (<data>/federated/keys/<name>.key, 0600)")
	return cmd
}

// federatedKey loads or creates <data>/federated/keys/<name>.key.
func (g *globalOptions) federatedKey(name string) (ed25519.PrivateKey, bool, error) {
	if err := federated.CheckKeyName(name); err != nil {
		return nil, false, usageError("%v", err)
	}
	return federated.PartyKey(g.dataDir, name)
}

func newFederatedAggregateCmd(g *globalOptions) *cobra.Command {
	var (
		o           processFlags
		listen, out string
		ownerKeys   []string
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
  for i in 0 1 2 3; do veil federated party --training-id t1 --rounds 20 --index $i --key owner$i & done

The training flags (--parties, --rounds, --split, --seed, ...) must be the
same for the aggregator and every party.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if o.TrainingID == "" {
			return nil, usageError("--training-id is required (the owners name the same one)")
		}
		pubs, err := federated.ParseOwnerKeys(ownerKeys, o.Parties)
		if err != nil {
			return nil, usageError("%v", err)
		}
		train, c, split, k, err := o.load(g)
		if err != nil {
			return nil, err
		}
		return federated.RunAggregator(cmd.Context(), federated.AggregatorOptions{
			Config: c, Split: split, Train: train, Ledger: o.ledger, ChainID: o.chainID, Listen: listen,
			Key: k, OwnerKeys: pubs, Out: out, SaltPath: g.store().SaltPath, Log: os.Stderr,
		})
	})
	fl := cmd.Flags()
	o.bind(fl, "coordinator", "the coordinator's key name (veil federated key)")
	fl.StringVar(&listen, "listen", "127.0.0.1:7500", "address of the coordinator's gRPC service")
	fl.StringSliceVar(&ownerKeys, "owner-keys", nil, "the owners' public keys, in owner order (hex, comma-separated)")
	fl.StringVar(&out, "out", "", "model file (default <training id>.json)")
	return cmd
}

func newFederatedPartyCmd(g *globalOptions) *cobra.Command {
	var (
		o           processFlags
		coordinator string
		index       int
	)
	cmd := &cobra.Command{
		Use:   "party",
		Short: "Run one data owner of a training as its own process",
		Long: `Run data owner --index: commit its shard of MNIST (the split flags must be the
aggregator's) to the ledger, take part in the key setup, train locally every
round and send only encrypted updates, and decrypt only the recorded sum.
See 'veil federated aggregate --help' for a full example.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if o.TrainingID == "" {
			return nil, usageError("--training-id is required")
		}
		if index < 0 || index >= o.Parties {
			return nil, usageError("--index %d: want 0..%d", index, o.Parties-1)
		}
		train, _, split, k, err := o.load(g)
		if err != nil {
			return nil, err
		}
		return federated.RunParty(cmd.Context(), federated.PartyOptions{
			TrainingID: o.TrainingID, Split: split, Train: train, Index: index, Key: k,
			Ledger: o.ledger, ChainID: o.chainID, Coordinator: coordinator,
		})
	})
	fl := cmd.Flags()
	o.bind(fl, "party", "this owner's key name (veil federated key)")
	fl.StringVar(&coordinator, "coordinator", "127.0.0.1:7500", "the coordinator's gRPC address")
	fl.IntVar(&index, "index", 0, "this owner's index in the training (0-based)")
	return cmd
}

func newFederatedTraceCmd() *cobra.Command {
	var (
		lf      ledgerFlags
		modelID string
	)
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "As a verifier, trace a registered model to its federated training on the ledger",
		Long: `Read a model's training link, its training's start, the owners' dataset
commitments, the collective key and every round from a ledger node, each
entry proven under a head the anchor (--ledger-key or --ledger-genesis)
vouches for, and check that the rounds chain from the initial model to the
registered commitment (docs/training.md).`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if modelID == "" {
			return nil, usageError("--model is required")
		}
		reader, lc, err := lf.reader(cmd.Context())
		if err != nil {
			return nil, err
		}
		defer lc.Close()
		tr, err := federated.TraceModel(cmd.Context(), reader, modelID)
		if err != nil {
			return nil, err
		}
		if !tr.OK() {
			return tr, fmt.Errorf("the training record of model %q does not verify", modelID)
		}
		return tr, nil
	})
	lf.register(cmd.Flags())
	cmd.Flags().StringVar(&modelID, "model", "", "registered model id")
	return cmd
}
