package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/protocol/demo"
)

func newDemoCmd(g *globalOptions) *cobra.Command {
	var (
		list              string
		dir, modelName    string
		k                 int
		verbose, ceremony bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Private, verifiable classification end to end, in one process",
		Long: `Start a single-node verifier ledger, an inference server and a client in
this process, run the trusted setup of the committed compact model
(784-20-80-sq-10) on the ledger: phase 1 and phase 2 with three
contributors (node operator, model owner, client), every contribution
verified by the node, the key derived by the node from the sealed
transcript (the three share this process, so this shows the mechanism and
the node's checks, not a split of trust); register the model with that
key, then classify a few MNIST test images privately: each image is
encrypted in one of k blocks beside k-1 hidden challenge images, the
server records a signed receipt, the client reveals the challenges, the
server proves the committed model's outputs on them, the ledger verifies
the proof, and the client verifies it again from log entries it checks
against the ledger node's pinned key, compares the proven outputs with
what it decrypted and records its verdict (a reason code only). The
ledger has the market: the client pays each request's price into escrow;
the honest provider is paid, a provider that runs another model on one
block is caught by the client's dispute (a fraud proof every node checks)
and slashed, and a provider that never proves is slashed and the client
refunded at the deadline. The balances before and after are printed.

The ceremony runs on every demo run (each run is a new chain). With
--ceremony=false the keys come from a ceremony of one on this machine
instead, made once and cached under the data directory: INSECURE (whoever
ran it could forge proofs), for quick repeated runs. --model default runs
the default model (784-32-128-sq-10), whose circuit needs the 2^17 domain:
its ceremony takes about twice as long.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			if args[0] == "true" || args[0] == "false" {
				return usageError("a boolean flag takes its value after '=': --ceremony=%s", args[0])
			}
			return usageError("demo takes no arguments, got %q", args[0])
		},
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		idx, err := dataset.ParseIndices(list)
		if err != nil {
			return nil, usageError("--images: %v", err)
		}
		if k != protocol.DefaultBlocks {
			return nil, usageError("--blocks: the demo's proving keys prove %d challenges per request, so k must be %d", protocol.ProofBatch, protocol.ProofBatch+1)
		}
		mf, err := model.Committed(modelName)
		if err != nil {
			return nil, usageError("--model: %v", err)
		}
		if dir == "" {
			d, err := os.MkdirTemp("", "veil-demo-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		o := demo.Options{Model: mf, Images: idx, Dir: dir, Blocks: k, Keys: g.store().ModelKeys, Log: newLogger(os.Stderr, verbose),
			Ceremony: ceremony, Salt: g.store().ModelSalt}
		if !jsonOutput(cmd) {
			o.Progress = cmd.OutOrStdout() // the table, row by row
		}
		rep, err := demo.Run(cmd.Context(), o)
		if err != nil {
			return nil, err
		}
		return rep, rep.Err()
	})
	cmd.Flags().StringVar(&list, "images", "0,1,2", "MNIST test image indices")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the ledger and the client's keys (default: a temporary one, removed)")
	cmd.Flags().IntVar(&k, "blocks", protocol.DefaultBlocks, "blocks per request: 1 real image and k-1 hidden challenges (the proving keys are for k=4)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "server and prover logs on stderr")
	cmd.Flags().BoolVar(&ceremony, "ceremony", true, "run the trusted setup on the demo's ledger (3 contributors to both phases, each contribution verified by the node); --ceremony=false: the cached ceremony of one, INSECURE")
	cmd.Flags().StringVar(&modelName, "model", "compact", "committed model: compact (784-20-80-sq-10, circuit domain 2^16) or default (784-32-128-sq-10, 2^17, a ceremony twice as long)")
	return cmd
}
