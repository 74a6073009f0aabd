package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/bench"
)

func newBenchCmd(g *globalOptions) *cobra.Command {
	var (
		out, peer, note, from, workload string
		quick, installPeer              bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run the benchmark suite: HE latency per stage, sizes, gRPC, proofs, ledger; tables, results.json and plots",
		Long: `Run Veil's fixed benchmark suite (see bench/README.md) and write
results.json, results.md and plots (PNG and SVG) into --out.

The full suite measures CKKS at LogN 13 and 14, hidden sizes 64 and 128, 1, 4
and 8 images per ciphertext and 1 and 2 workers (key generation, encryption,
every stage of the encrypted network, decryption, sizes), the same model in
plaintext (and the encrypted/plaintext ratio), accuracy, the gRPC service
(round trips, throughput vs concurrent clients), Groth16 proving per batch
size and verification, and ledger transactions per second. Medians and 95th
percentiles; every result records the CPU, cores, Go and library versions,
git commit, date and load.

--quick runs a reduced suite in under a minute (the CI smoke test).
--workload heorg-mnist runs the HomomorphicEncryption.org ML-inference
workload instead: it trains (once; cached under <data>/bench/heorg-mnist)
the MNIST MLP 784-128-64-10 with degree-2 ReLU approximations, evaluates it
under CKKS with parameters chosen for it, and reports key generation,
encryption, server compute, decryption and sizes for one image and
batches of 100 and 1,000 test images, with accuracy, beside the suite's
published OpenFHE figures (not re-run); workload-heorg-mnist.{json,md,png,svg}
go into --out.
--peer seal also runs Microsoft SEAL (node-seal on Node.js 22) on the same
network and reports the ratios; --install-peer installs it first into
<data>/peers/seal with npm. Groth16 keys are cached under <data>/bench/zk.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		switch {
		case peer != "" && peer != "seal":
			return nil, usageError("--peer: unknown peer %q (known: seal)", peer)
		case installPeer && peer == "":
			return nil, usageError("--install-peer needs --peer seal")
		case out == "":
			return nil, usageError("--out must not be empty")
		case from != "" && (quick || peer != ""):
			return nil, usageError("--from re-renders an earlier run: it takes no --quick or --peer")
		}
		if _, err := g.ensureDataDir(); err != nil {
			return nil, err
		}
		if workload != "" {
			if quick || peer != "" || from != "" {
				return nil, usageError("--workload takes no --quick, --peer or --from")
			}
			return g.runWorkload(cmd.Context(), workload, out)
		}
		res, err := g.runBench(cmd.Context(), from, quick, installPeer, bench.Options{DataDir: g.dataDir, Peer: peer, Note: note})
		if err != nil {
			return nil, err
		}
		// Written (and printed) even when incomplete, so that a failed stage
		// can be looked at.
		files, err := bench.WriteOutputs(out, res)
		if err == nil && !g.quiet {
			fmt.Fprintf(os.Stderr, "veil: bench %s (%.0f s); wrote %s\n", res.Suite.Name, res.DurationS, strings.Join(files, ", "))
		}
		if verr := bench.Validate(res); verr != nil && err == nil {
			err = fmt.Errorf("incomplete or implausible results (written anyway): %w", verr)
		}
		return res, err
	})
	cmd.Flags().StringVar(&out, "out", "bench/out", "directory for results.json, results.md and the plots")
	cmd.Flags().BoolVar(&quick, "quick", false, "run the quick suite (under a minute; the CI smoke test)")
	cmd.Flags().StringVar(&peer, "peer", "", "also run a peer library on the same network: seal (Microsoft SEAL via node-seal)")
	cmd.Flags().BoolVar(&installPeer, "install-peer", false, "install the --peer first (npm ci into <data>/peers/<peer>)")
	cmd.Flags().StringVar(&note, "note", "", "free text recorded with the environment (e.g. \"shared machine\")")
	cmd.Flags().StringVar(&workload, "workload", "", "run a standard workload instead of the suite: "+strings.Join(bench.Workloads, ", "))
	cmd.Flags().StringVar(&from, "from", "", "do not run: re-render the tables and plots of this results.json into --out")
	return cmd
}

// runWorkload runs a named workload and writes its outputs.
func (g *globalOptions) runWorkload(ctx context.Context, name, out string) (result, error) {
	if !slices.Contains(bench.Workloads, name) {
		return nil, usageError("--workload: unknown workload %q (known: %s)", name, strings.Join(bench.Workloads, ", "))
	}
	var log io.Writer = os.Stderr
	if g.quiet {
		log = io.Discard
	}
	res, err := bench.RunWorkload(ctx, name, bench.WorkloadOptions{DataDir: g.dataDir, Log: log})
	if err != nil {
		return nil, err
	}
	files, err := bench.WriteWorkloadOutputs(out, res)
	if err == nil && !g.quiet {
		fmt.Fprintf(os.Stderr, "veil: workload %s (%.0f s); wrote %s\n", name, res.DurationS, strings.Join(files, ", "))
	}
	if verr := res.Validate(); verr != nil && err == nil {
		err = fmt.Errorf("the workload's rules are not met (results written anyway): %w", verr)
	}
	return res, err
}

// runBench runs the suite with a progress bar, or reads an earlier run.
func (g *globalOptions) runBench(ctx context.Context, from string, quick, installPeer bool, o bench.Options) (*bench.Result, error) {
	if from != "" {
		return bench.ReadJSON(from)
	}
	suite := bench.DefaultSuite()
	if quick {
		suite = bench.QuickSuite()
	}
	quietGnark() // gnark logs every proof on stdout, which --json owns
	if installPeer {
		fmt.Fprintf(os.Stderr, "veil: installing the SEAL peer (node-seal and Node.js 22 from npm) into %s\n", bench.SealDir(g.dataDir))
		dir, err := bench.InstallSeal(ctx, g.dataDir, os.Stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "veil: SEAL peer installed in %s\n", dir)
	}
	bar := g.benchBar(suite.Name)
	defer bar.Finish()
	o.Log = io.Writer(barWriter{bar})
	if g.quiet {
		o.Log = io.Discard
	}
	o.Progress = func(done, total float64, task string) {
		if bar.GetMax64() != int64(total*1000) {
			bar.ChangeMax64(int64(total * 1000))
		}
		bar.Describe(fmt.Sprintf("bench %s: %-44.44s", suite.Name, task))
		_ = bar.Set64(int64(done * 1000))
	}
	return bench.Run(ctx, suite, o)
}

// benchBar is a progress bar with an ETA and no count (its units are
// estimated milliseconds of work).
func (g *globalOptions) benchBar(suite string) *progressbar.ProgressBar {
	w := g.progressWriter()
	return progressbar.NewOptions64(1000,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("bench "+suite),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(200_000_000),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionSetWidth(30),
	)
}

// barWriter writes log lines above the progress bar.
type barWriter struct{ bar *progressbar.ProgressBar }

func (b barWriter) Write(p []byte) (int, error) {
	_ = b.bar.Clear()
	return os.Stderr.Write(p)
}
