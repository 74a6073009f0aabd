package main

// The `veil setup` commands: Groth16 trusted setups (package zk/mpcsetup)
// and the load-or-setup policy for cached keys (zk.KeyStore).

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// zkProgress turns zk progress reports into a stage line per stage and a
// bar for stages that report totals.
func (g *globalOptions) zkProgress() mpcsetup.Progress {
	var stage string
	var bar *progressbar.ProgressBar
	start := time.Now()
	return func(s string, done, total int) {
		if s != stage {
			if bar != nil {
				_ = bar.Finish()
				bar = nil
			}
			stage = s
			if !g.quiet {
				fmt.Fprintf(os.Stderr, "veil: [%5.1fs] %s\n", time.Since(start).Seconds(), s)
			}
		}
		if total > 0 {
			if bar == nil {
				bar = g.progress(int64(total), s)
			}
			_ = bar.Set(done)
		}
	}
}

func newSetupCmd(g *globalOptions) *cobra.Command {
	var path, dir, beaconHex string
	var batch int
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Make Groth16 keys: a ceremony of one, or the steps of a multi-party ceremony",
		Long: `Without a subcommand, run gnark's Groth16 MPC setup (phase 1 and phase 2)
as a ceremony of ONE on this machine and cache the keys under the data
directory (keyed by circuit, batch size and circuit version). Phase 1 is
cached by domain size and reused.

A multi-party ceremony, where each verifier contributes randomness and the
keys are sound if any one contributor was honest, runs in a shared
directory:

  veil setup init --dir D --batch 3          # coordinator
  veil setup contribute --dir D              # each participant, in turn (phase 1)
  veil setup verify --dir D                  # anyone, at any time
  veil setup close-phase1 --dir D --beacon HEX   # coordinator, beacon drawn after the last contribution
  veil setup contribute --dir D              # each participant, in turn (phase 2)
  veil setup finalize --dir D --beacon HEX   # coordinator; installs the keys
  veil zk export-vk --batch 3 -o vk.bin      # publish the verifying key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.store().SetupModel(cmd.Context(), path, batch)
		},
	}
	cmd.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	cmd.Flags().IntVar(&batch, "batch", 3, "challenges per proof")

	beacon := func() ([]byte, error) {
		if beaconHex == "" {
			return nil, usageError("--beacon is required: public randomness (hex) fixed after the last contribution, e.g. a future drand round")
		}
		b, err := hex.DecodeString(beaconHex)
		if err != nil || len(b) < 16 {
			return nil, usageError("--beacon: want at least 32 hex digits")
		}
		return b, nil
	}
	// sub is a step of a directory ceremony: it prints what run did.
	sub := func(use, short string, run func(protocol.DirCeremony, context.Context) (string, error)) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError("--dir is required")
			}
			return printed(cmd)(run(protocol.DirCeremony{Dir: dir, Model: path, Batch: batch, Store: g.store()}, cmd.Context()))
		}}
		c.Flags().StringVar(&dir, "dir", "", "ceremony directory")
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
		c.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
		return c
	}
	withBeacon := func(step func(protocol.DirCeremony, context.Context, []byte) (string, error)) func(protocol.DirCeremony, context.Context) (string, error) {
		return func(c protocol.DirCeremony, ctx context.Context) (string, error) {
			b, err := beacon()
			if err != nil {
				return "", err
			}
			return step(c, ctx, b)
		}
	}
	cmd.AddCommand(sub("init", "Start a multi-party ceremony in --dir", protocol.DirCeremony.Init))
	contribute := sub("contribute", "Add your random contribution to the current phase (a directory ceremony, or the ledger's with --ledger)", protocol.DirCeremony.Contribute)
	var ledgerAddr, ceremonyID, keyPath, hashHex, auditID, auditModel string
	dirRun := contribute.RunE
	contribute.RunE = func(cmd *cobra.Command, args []string) error {
		if ledgerAddr == "" {
			return dirRun(cmd, args)
		}
		return printed(cmd)(g.store().ContributeOnLedger(cmd.Context(), ledgerAddr, ceremonyID, keyPath))
	}
	contribute.Flags().StringVar(&ledgerAddr, "ledger", "", "contribute to the ceremony on this ledger node (gRPC address) instead of --dir")
	contribute.Flags().StringVar(&ceremonyID, "ceremony", ledger.Phase1ID, "with --ledger: the ceremony id (phase1, or a phase-2 ceremony)")
	contribute.Flags().StringVar(&keyPath, "key", "", "with --ledger: the contributor's ed25519 identity file (default: <data>/client/identity.key)")
	cmd.AddCommand(contribute)
	check := &cobra.Command{Use: "check", Short: "Check from verified log entries that a contribution is in a ledger ceremony's transcript", Args: cobra.NoArgs}
	var checkLedger ledgerFlags
	withResult(check, func(cmd *cobra.Command, _ []string) (result, error) {
		h, err := hex.DecodeString(hashHex)
		if err != nil || len(h) != 32 {
			return nil, usageError("--hash: want 64 hex digits (what `veil setup contribute --ledger` printed)")
		}
		reader, conn, err := checkLedger.reader(cmd.Context())
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return protocol.CheckContribution(cmd.Context(), reader, ceremonyID, h)
	})
	checkLedger.register(check.Flags())
	check.Flags().StringVar(&ceremonyID, "ceremony", ledger.Phase1ID, "the ceremony id")
	check.Flags().StringVar(&hashHex, "hash", "", "the contribution hash (hex)")
	cmd.AddCommand(check)
	audit := &cobra.Command{Use: "audit", Short: "Re-verify a ledger ceremony's whole transcript from verified log entries, without the nodes' word", Long: `Re-verify ceremony --ceremony (phase1, or a phase-2 ceremony with the phase 1
it builds on) from log entries verified against the ledger's trust anchor
and the chunks they name: every contribution against the previous one,
with its proofs of knowledge bound to its signer; the phase-2 start against
the sealed phase 1; the seals; and the verifying key, re-derived from the
transcript, against the one the node's record claims. With --model, the
ceremony is the one the model's logged registration names, and the key it
carries must be the re-derived one: the key the model's proofs are
checked with. Neither the nodes' verification nor their records are
relied on. It costs what the nodes paid:
7.5 s per phase-1 contribution at 2^16, about 15 s at 2^17.`, Args: cobra.NoArgs}
	var auditLedger ledgerFlags
	withResult(audit, func(cmd *cobra.Command, _ []string) (result, error) {
		reader, conn, err := auditLedger.reader(cmd.Context())
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		progress := func(format string, a ...any) { fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", a...) }
		if g.quiet {
			progress = nil
		}
		return protocol.AuditLedgerCeremony(cmd.Context(), reader, auditID, auditModel, progress)
	})
	auditLedger.register(audit.Flags())
	audit.Flags().StringVar(&auditID, "ceremony", ledger.Phase1ID, "the ceremony id: phase1, or a phase-2 ceremony (audited with its phase 1)")
	audit.Flags().StringVar(&auditModel, "model", "", "audit the ceremony this registered model's key comes from, and check that the registration carries the key re-derived from it (instead of --ceremony)")
	cmd.AddCommand(audit)
	// ledgerCmd is a ceremony step that signs a transaction for the node at
	// --ledger with the contributor's identity; it prints what run did.
	ledgerCmd := func(use, short string, run func(ctx context.Context, c *query.Client, s ledger.Signer) (string, error)) *cobra.Command {
		var addr, key string
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				return usageError("--ledger is required (a node's gRPC address)")
			}
			k, err := g.store().Identity(key)
			if err != nil {
				return err
			}
			qc, signer, err := query.DialSigner(cmd.Context(), addr, k)
			if err != nil {
				return err
			}
			defer qc.Close()
			return printed(cmd)(run(cmd.Context(), qc, signer))
		}}
		c.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
		c.Flags().StringVar(&key, "key", "", "ed25519 identity file (default: <data>/client/identity.key)")
		c.Flags().StringVar(&ceremonyID, "ceremony", ledger.Phase1ID, "the ceremony id")
		return c
	}
	cmd.AddCommand(ledgerCmd("seal", "Close a ledger ceremony and seal it with the beacon of a later block", func(ctx context.Context, c *query.Client, s ledger.Signer) (string, error) {
		return protocol.SealOnLedger(ctx, c, s, ceremonyID)
	}))
	open := ledgerCmd("open", "Open the phase 2 of a model's circuit on the ledger (after phase 1 is sealed)", func(ctx context.Context, c *query.Client, s ledger.Signer) (string, error) {
		return protocol.OpenOnLedger(ctx, c, s, ceremonyID, path, batch)
	})
	open.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	open.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
	cmd.AddCommand(open)
	cmd.AddCommand(sub("verify", "Verify every contribution so far", protocol.DirCeremony.Verify))
	closeCmd := sub("close-phase1", "Verify and seal phase 1 with a beacon, then start phase 2", withBeacon(protocol.DirCeremony.ClosePhase1))
	closeCmd.Flags().StringVar(&beaconHex, "beacon", "", "public random beacon, hex")
	cmd.AddCommand(closeCmd)
	fin := sub("finalize", "Verify the whole ceremony, seal phase 2 and install the keys", withBeacon(protocol.DirCeremony.Finalize))
	fin.Flags().StringVar(&beaconHex, "beacon", "", "public random beacon, hex")
	cmd.AddCommand(fin)
	return cmd
}

// printed prints what a ceremony step did on the command's output.
func printed(cmd *cobra.Command) func(out string, err error) error {
	return func(out string, err error) error {
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(cmd.OutOrStdout(), out)
		return err
	}
}
