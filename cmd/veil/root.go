package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark/logger"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/protocol"
)

// globalOptions are the flags every subcommand understands.
type globalOptions struct {
	dataDir string
	quiet   bool
}

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "veil",
		Short: "Private, verifiable neural-network inference",
		Long: `Veil classifies images under CKKS homomorphic encryption: the client's
image is encrypted, the server evaluates a committed network on the
ciphertext, and only the client can decrypt the scores. zk-SNARK proofs on a
verifier ledger show which committed model answered.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// gnark logs every proof and verification at debug level on a
		// global logger; Veil reports its own progress.
		PersistentPreRun: func(*cobra.Command, []string) { quietGnark() },
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data", defaultDataDir(), "data directory for keys, setup files and caches ($VEIL_HOME)")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "no progress bars")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError("%v", err) })
	root.AddCommand(
		newTrainCmd(g),
		newModelCmd(g),
		newSetupCmd(g), newProveCmd(g), newVerifyCmd(g), newZKCmd(g),
		newInferCmd(g),
		newEvalCmd(g),
		newServeCmd(g),
		newDemoCmd(g),
		newVerifyRequestCmd(g),
		newLedgerCmd(g),
		newProvidersCmd(), newAccountCmd(g),
		newBenchCmd(g),
		newFederatedCmd(g),
	)
	return root
}

// defaultDataDir is $VEIL_HOME, else ~/.veil.
func defaultDataDir() string {
	if d := os.Getenv("VEIL_HOME"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".veil")
	}
	return ".veil"
}

// progress returns a progress bar on stderr, or a silent one with --quiet.
func (g *globalOptions) progress(total int64, what string) *progressbar.ProgressBar {
	w := g.progressWriter()
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		progressbar.OptionFullWidth(),
	)
}

// progressWriter is where progress bars draw: stderr when it is a terminal,
// nowhere otherwise (a bar redrawn into a log file or a pipe is thousands
// of lines; the stage lines are printed either way).
func (g *globalOptions) progressWriter() io.Writer {
	if g.quiet {
		return io.Discard
	}
	if fi, err := os.Stderr.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return io.Discard
	}
	return os.Stderr
}

// store is the data directory's salts, keys and identity; notes and
// setup stages go to stderr.
func (g *globalOptions) store() protocol.LocalStore {
	return protocol.LocalStore{DataDir: g.dataDir, Log: os.Stderr, Quiet: g.quiet, Progress: g.zkProgress()}
}

// quietGnark silences gnark's own logging (compile, solver, prover and
// verifier debug lines) for the zk commands: they have their own progress
// output.
func quietGnark() { logger.Disable() }
