package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/bench"
	"github.com/veil-project/veil/he"
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
		if _, err := g.store().Ensure(); err != nil {
			return nil, err
		}
		if workload != "" {
			if quick || peer != "" || from != "" {
				return nil, usageError("--workload takes no --quick, --peer or --from")
			}
			if !slices.Contains(bench.Workloads, workload) {
				return nil, usageError("--workload: unknown workload %q (known: %s)", workload, strings.Join(bench.Workloads, ", "))
			}
			return bench.RunWorkloadTo(cmd.Context(), workload, out, bench.WorkloadOptions{DataDir: g.dataDir, Log: g.log()})
		}
		run := bench.SuiteRun{Options: bench.Options{DataDir: g.dataDir, Peer: peer, Note: note}, Out: out, From: from, Quick: quick, InstallPeer: installPeer,
			Status: os.Stderr, Quiet: g.quiet}
		if from == "" {
			bar := g.benchBar(run.Suite().Name)
			defer bar.Finish()
			run.Log, run.Progress = g.barLog(bar), barProgress(bar, run.Suite().Name)
		}
		return bench.RunSuite(cmd.Context(), run)
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

// log is where a command's log lines go: stderr, nowhere with --quiet.
func (g *globalOptions) log() io.Writer {
	if g.quiet {
		return io.Discard
	}
	return os.Stderr
}

// barLog writes log lines above the progress bar, or nowhere with --quiet.
func (g *globalOptions) barLog(bar *progressbar.ProgressBar) io.Writer {
	if g.quiet {
		return io.Discard
	}
	return barWriter{bar}
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

// barProgress shows the suite's progress (bench.Options.Progress) on bar.
func barProgress(bar *progressbar.ProgressBar, suite string) func(done, total float64, task string) {
	return func(done, total float64, task string) {
		if bar.GetMax64() != int64(total*1000) {
			bar.ChangeMax64(int64(total * 1000))
		}
		bar.Describe(fmt.Sprintf("bench %s: %-44.44s", suite, task))
		_ = bar.Set64(int64(done * 1000))
	}
}

// barWriter writes log lines above the progress bar.
type barWriter struct{ bar *progressbar.ProgressBar }

func (b barWriter) Write(p []byte) (int, error) {
	_ = b.bar.Clear()
	return os.Stderr.Write(p)
}

func newEvalCmd(g *globalOptions) *cobra.Command {
	var o bench.EvalOptions
	var modelPath string
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure accuracy and latency on the MNIST test set, encrypted and in plaintext",
		Args:  cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if o.Limit <= 0 || o.Limit > 10000 {
			return nil, usageError("--limit must be in [1, 10000]")
		}
		if blocks := he.DefaultParametersLiteral.Blocks(); o.Encrypted && (o.Pack < 1 || o.Pack > blocks) {
			return nil, usageError("--pack must be in [1, %d]", blocks)
		}
		if o.Encrypted {
			bar := g.progress(int64(o.Limit), "encrypted inference")
			defer bar.Finish()
			o.Progress = func(done, _ int) { _ = bar.Set(done) }
		}
		return bench.EvalMNIST(cmd.Context(), modelPath, o)
	})
	fl := cmd.Flags()
	fl.BoolVar(&o.Encrypted, "encrypted", false, "also run every image through CKKS encryption")
	fl.IntVar(&o.Limit, "limit", 10000, "number of test images (from index 0)")
	fl.IntVar(&o.Pack, "pack", 1, "images per ciphertext (1 measures single-image latency; up to the number of blocks)")
	fl.StringVar(&modelPath, "model", "", "model file (default: the committed default model)")
	return cmd
}
