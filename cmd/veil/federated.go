package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol/federated"
)

func newFederatedCmd(g *globalOptions) *cobra.Command {
	var (
		parties, threshold, minUpdates, rounds, epochs, looRounds int
		localSteps, batch                                         int
		lr, majority                                              float64
		split, shares, out, trainingID                            string
		asJSON, baseline, noRegister, augment, scaffold           bool
		seed                                                      uint64
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
			if split != "noniid" && split != "iid" {
				return usageError("--split: want noniid or iid, not %q", split)
			}
			if shares != "loo" && shares != "samples" {
				return usageError("--shares: want loo or samples, not %q", shares)
			}
			if trainingID == "" {
				trainingID = fmt.Sprintf("fl-%d", time.Now().Unix())
			}
			c := federated.DefaultConfig(trainingID)
			c.Owners, c.Threshold, c.MinUpdates = parties, threshold, minUpdates
			c.LocalSteps, c.BatchSize, c.LearningRate, c.Augment, c.Scaffold, c.Seed = localSteps, batch, lr, augment, scaffold, seed
			if c.Threshold == 0 {
				c.Threshold = max(2, parties-1)
			}
			if c.MinUpdates == 0 {
				c.MinUpdates = max(2, parties-1)
			}
			dir, err := dataset.FindMNISTDir()
			if err != nil {
				return err
			}
			train, err := dataset.LoadTrain(dir)
			if err != nil {
				return err
			}
			test, err := dataset.LoadTest(dir)
			if err != nil {
				return err
			}
			const validation = 5000
			c.Rounds = rounds
			if c.Rounds == 0 {
				c.Rounds = federated.RoundsForEpochs(c, train.Len()-validation, epochs)
			}
			if err := c.Validate(); err != nil {
				return usageError("%v", err)
			}
			work, err := g.ensureDataDir("federated", trainingID)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(work, "model.json")
			}
			w := cmd.OutOrStdout()
			lc := federated.LocalConfig{
				Config: c, Split: federated.SplitConfig{NonIID: split == "noniid", Majority: majority, Seed: seed},
				Train: train, Test: test, ValidationSize: validation, HE: he.DefaultAggregationParameters,
				Dir: work, ModelPath: out, ModelName: trainingID, LOO: shares == "loo", LOORounds: looRounds, Baseline: baseline,
				OnStage: func(s string) { fmt.Fprintf(os.Stderr, "veil: %s\n", s) },
				OnRound: func(r federated.RoundReport) {
					if asJSON || g.quiet {
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
				lc.VerifyingKey = func(ctx context.Context, m *model.Model) ([]byte, error) {
					pk, err := g.keys(ctx, m, proofBatch, true)
					if err != nil {
						return nil, err
					}
					return pk.VK.MarshalBinary()
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
	fl.IntVar(&parties, "parties", 4, "data owners")
	fl.IntVar(&threshold, "threshold", 0, "owners needed to decrypt (default parties-1)")
	fl.IntVar(&minUpdates, "min-updates", 0, "fewest updates an aggregate may sum (default parties-1)")
	fl.StringVar(&split, "split", "noniid", "noniid (each owner mostly 2-3 digits) or iid")
	fl.Float64Var(&majority, "majority", 0.9, "non-IID: fraction of an owner's samples from its own digits")
	fl.IntVar(&rounds, "rounds", 0, "rounds (default: as many as --epochs of the pooled data)")
	fl.IntVar(&epochs, "epochs", 50, "training budget in epochs of the pooled data, when --rounds is not given")
	fl.IntVar(&localSteps, "local-steps", 100, "local mini-batches per owner per round")
	fl.IntVar(&batch, "batch", 32, "local mini-batch size")
	fl.Float64Var(&lr, "lr", 3e-3, "Adam learning rate (one cosine schedule over all rounds)")
	fl.BoolVar(&augment, "augment", true, "random affine distortions of the training images")
	fl.BoolVar(&scaffold, "scaffold", true, "SCAFFOLD drift correction (doubles the update)")
	fl.Uint64Var(&seed, "seed", 1, "seed of the split, the initial model and local training")
	fl.StringVar(&shares, "shares", "loo", "owners' fee shares: loo (leave-one-out, N more trainings) or samples")
	fl.IntVar(&looRounds, "loo-rounds", 0, "rounds of each leave-one-out training (default --rounds)")
	fl.BoolVar(&baseline, "baseline", false, "also train the same model centrally on the pooled shards (about 4 minutes)")
	fl.BoolVar(&noRegister, "no-register", false, "do not register the model (no Groth16 setup)")
	fl.StringVar(&out, "out", "", "model file (default <data>/federated/<id>/model.json)")
	fl.StringVar(&trainingID, "training-id", "", "training id (default fl-<unix time>)")
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
		fmt.Fprintf(w, "owner %d: %5d samples, mostly digits %s, dataset root %s…, share %5.2f%%\n",
			i, o.Samples, strings.Join(top, ","), o.MerkleRoot[:16], float64(o.ShareBp)/100)
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

func newFederatedPartyCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "party", Short: "Run one data owner (see 'veil federated aggregate')", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return fmt.Errorf("not implemented yet") }}
}

func newFederatedAggregateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "aggregate", Short: "Run the aggregator (coordinator) of a training", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return fmt.Errorf("not implemented yet") }}
}

func newFederatedKeyCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "key", Short: "Make or show a party's signing key", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return fmt.Errorf("not implemented yet") }}
}
