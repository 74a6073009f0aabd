package main

// The `veil setup` commands: Groth16 trusted setups (package zk/mpcsetup)
// and the load-or-setup policy for cached keys (zk.KeyStore).

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/circuits"
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
			spec, err := specOfModel(path)
			if err != nil {
				return err
			}
			st := g.store()
			pk, err := st.SetupOfOne(cmd.Context(), spec, batch)
			if err != nil {
				return err
			}
			_, err = st.InstallKeys(pk)
			return err
		},
	}
	cmd.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	cmd.Flags().IntVar(&batch, "batch", 3, "challenges per proof")

	needDir := func() error {
		if dir == "" {
			return usageError("--dir is required")
		}
		return nil
	}
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
	sub := func(use, short string, run func(cmd *cobra.Command) error) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needDir(); err != nil {
				return err
			}
			return run(cmd)
		}}
		c.Flags().StringVar(&dir, "dir", "", "ceremony directory")
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
		c.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
		return c
	}
	cmd.AddCommand(sub("init", "Start a multi-party ceremony in --dir", func(cmd *cobra.Command) error {
		spec, err := specOfModel(path)
		if err != nil {
			return err
		}
		ci, err := mpcsetup.CeremonyInit(dir, spec, batch)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "ceremony for circuit %.16s, batch %d: %d constraints, domain %d\n", ci.ModelID, ci.Batch, ci.Constraints, ci.Domain)
		return nil
	}))
	contribute := sub("contribute", "Add your random contribution to the current phase (a directory ceremony, or the ledger's with --ledger)", func(cmd *cobra.Command) error {
		p, h, err := mpcsetup.CeremonyContribute(cmd.Context(), dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nsha256 %x (publish it: it lets anyone check your contribution is in the chain)\n", p, h)
		return nil
	})
	var ledgerAddr, ceremonyID, keyPath, hashHex string
	dirRun := contribute.RunE
	contribute.RunE = func(cmd *cobra.Command, args []string) error {
		if ledgerAddr == "" {
			return dirRun(cmd, args)
		}
		key, err := g.store().Identity(keyPath)
		if err != nil {
			return err
		}
		c, err := query.Dial(ledgerAddr)
		if err != nil {
			return err
		}
		defer c.Close()
		res, err := protocol.ContributeToLedger(cmd.Context(), c, key, ceremonyID, "veil setup contribute")
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "contributed to ceremony %s: verified by the node and logged at index %d\ncontribution %x\n"+
			"(keep it: `veil setup check --ledger %s --ceremony %s --hash %x` finds it in the transcript)\n",
			res.Ceremony, res.Index, res.Hash, ledgerAddr, res.Ceremony, res.Hash)
		return nil
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
	ledgerCmd := func(use, short string, run func(ctx context.Context, c *query.Client, s ledger.Signer, out io.Writer) error) *cobra.Command {
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
			return run(cmd.Context(), qc, signer, cmd.OutOrStdout())
		}}
		c.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
		c.Flags().StringVar(&key, "key", "", "ed25519 identity file (default: <data>/client/identity.key)")
		c.Flags().StringVar(&ceremonyID, "ceremony", ledger.Phase1ID, "the ceremony id")
		return c
	}
	cmd.AddCommand(ledgerCmd("seal", "Close a ledger ceremony and seal it with the beacon of a later block", func(ctx context.Context, c *query.Client, s ledger.Signer, out io.Writer) error {
		rec, err := protocol.CloseAndSeal(ctx, c, s, ceremonyID, 200*time.Millisecond)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ceremony %s sealed with %d contributions and the beacon of block %d (%x)\n", ceremonyID, len(rec.GetContributions()), rec.GetBeaconHeight(), rec.GetBeacon())
		if len(rec.GetVerifyingKeyHash()) > 0 {
			fmt.Fprintf(out, "the ledger derived verifying key %x\n", rec.GetVerifyingKeyHash())
		}
		return nil
	}))
	open := ledgerCmd("open", "Open the phase 2 of a model's circuit on the ledger (after phase 1 is sealed)", func(ctx context.Context, c *query.Client, s ledger.Signer, out io.Writer) error {
		spec, err := specOfModel(path)
		if err != nil {
			return err
		}
		if _, err := protocol.OpenPhase2(ctx, c, s, ceremonyID, spec, batch); err != nil {
			return err
		}
		fmt.Fprintf(out, "phase 2 %s opened for circuit %x, batch %d: contribute with `veil setup contribute --ledger ADDR --ceremony %s`\n", ceremonyID, specPrefix(spec), batch, ceremonyID)
		return nil
	})
	open.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	open.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
	cmd.AddCommand(open)
	cmd.AddCommand(sub("verify", "Verify every contribution so far", func(cmd *cobra.Command) error {
		spec, err := specOfModel(path)
		if err != nil {
			return err
		}
		n1, n2, err := mpcsetup.CeremonyVerify(cmd.Context(), dir, spec, batch, g.zkProgress())
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "OK: %d phase-1 and %d phase-2 contributions verified\n", n1, n2)
		return nil
	}))
	closeCmd := sub("close-phase1", "Verify and seal phase 1 with a beacon, then start phase 2", func(cmd *cobra.Command) error {
		spec, err := specOfModel(path)
		if err != nil {
			return err
		}
		b, err := beacon()
		if err != nil {
			return err
		}
		if err := mpcsetup.CeremonyClosePhase1(cmd.Context(), dir, spec, batch, b, g.zkProgress()); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "phase 1 sealed; phase 2 open for contributions")
		return nil
	})
	closeCmd.Flags().StringVar(&beaconHex, "beacon", "", "public random beacon, hex")
	cmd.AddCommand(closeCmd)
	fin := sub("finalize", "Verify the whole ceremony, seal phase 2 and install the keys", func(cmd *cobra.Command) error {
		spec, err := specOfModel(path)
		if err != nil {
			return err
		}
		b, err := beacon()
		if err != nil {
			return err
		}
		pk, err := mpcsetup.CeremonyFinalize(cmd.Context(), dir, spec, batch, b, g.zkProgress())
		if err != nil {
			return err
		}
		kd, err := g.store().InstallKeys(pk)
		if err != nil {
			return err
		}
		h := pk.VK.Hash()
		fmt.Fprintf(cmd.OutOrStdout(), "keys installed in %s\nverifying key sha256 %x\n", kd, h)
		return nil
	})
	fin.Flags().StringVar(&beaconHex, "beacon", "", "public random beacon, hex")
	cmd.AddCommand(fin)
	return cmd
}

func specPrefix(s *circuits.Spec) []byte { id := s.ID(); return id[:8] }
