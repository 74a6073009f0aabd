package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/protocol"
)

func newLedgerCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Run and query the verifier ledger",
		Long: `The verifier ledger records model registrations, inference receipts,
challenge reveals, Groth16 challenge proofs (verified by every node before
they are accepted) and verdicts in an append-only Merkle log with signed
checkpoints.

  veil ledger serve                         single node in this process (default)
  veil ledger testnet --nodes 4 --dir D     write a localhost CometBFT testnet
  veil ledger node --home D/node0           run one validator of it
  veil ledger status --ledger ADDR          print the latest checkpoint
  veil ledger entry --ledger ADDR --index N fetch a log entry with its inclusion proof
  veil ledger verify-inclusion --entry F --key K   check an entry offline

The market (docs/market.md): veil ledger serve --market --fund KEY=VEIL,
veil ledger testnet --fund KEY=VEIL (the market is on unless --free);
veil providers --ledger ADDR lists offers, veil account --ledger ADDR a
balance.`,
	}
	cmd.AddCommand(newLedgerServeCmd(g), newLedgerTestnetCmd(), newLedgerNodeCmd(g),
		newLedgerStatusCmd(), newLedgerEntryCmd(), newLedgerVerifyInclusionCmd())
	return cmd
}

func newLedgerServeCmd(g *globalOptions) *cobra.Command {
	var o protocol.LedgerNodeOptions
	var market bool
	var funds []string
	var phase1, minContrib int
	var closeHeight, window uint64
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a single-node ledger (embedded bbolt store) with its gRPC and HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.BlockInterval <= 0 {
				return usageError("--block-interval must be positive: deadlines are counted in blocks")
			}
			genesis, err := parseFunds(funds)
			if err != nil {
				return err
			}
			var ceremony *ledger.CeremonyParams
			if phase1 != 0 {
				if phase1 < 1 || phase1 > 24 || minContrib < 1 {
					return usageError("--phase1: log2 of the phase-1 domain, 1..24 (17 for the default circuit); --min-contributions at least 1")
				}
				ceremony = &ledger.CeremonyParams{Phase1Domain: 1 << phase1, MinContributions: uint32(minContrib), Phase1CloseHeight: closeHeight, Phase2Window: window}
			}
			if o.Dir, err = g.store().Ensure("ledger"); err != nil {
				return err
			}
			o.Params, o.Log = ledger.ChainParams(market, genesis, ceremony), cmd.ErrOrStderr()
			return protocol.ServeLedgerNode(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.DB, "db", "", "database file (default <data>/ledger/ledger.db)")
	cmd.Flags().StringVar(&o.ChainID, "chain-id", ledger.DefaultChainID, "ledger chain id (transactions name it)")
	cmd.Flags().StringVar(&o.GRPC, "grpc", "127.0.0.1:7070", "gRPC listen address (off: none)")
	cmd.Flags().StringVar(&o.HTTP, "http", "127.0.0.1:7071", "HTTP listen address for JSON and the web page (off: none)")
	cmd.Flags().DurationVar(&o.BlockInterval, "block-interval", time.Second, "one block per interval (heights measure time: deadlines are in blocks)")
	cmd.Flags().BoolVar(&market, "market", false, "create the ledger with the market's fees and rules (docs/market.md; fixed at creation)")
	cmd.Flags().Uint64Var(&closeHeight, "phase1-close-height", 0, "with --phase1: phase 1 may not be closed before this height (time for honest contributors)")
	cmd.Flags().Uint64Var(&window, "phase2-window", 0, "with --phase1: a phase 2 may not be closed until this many blocks after it is opened")
	cmd.Flags().IntVar(&phase1, "phase1", 0, "create the ledger with a trusted-setup phase 1 open for a domain of 2^N (17 for the default circuit; docs/zk.md)")
	cmd.Flags().IntVar(&minContrib, "min-contributions", 3, "with --phase1: distinct contributors a ceremony needs before it closes (a phase 2's opener not counted)")
	cmd.Flags().StringArrayVar(&funds, "fund", nil, "a genesis balance KEY=VEIL (repeatable; implies --market; only when the ledger is created)")
	return cmd
}

func newLedgerTestnetCmd() *cobra.Command {
	var o cometbft.TestnetOptions
	var free bool
	var funds []string
	var phase1 int
	cmd := &cobra.Command{Use: "testnet", Short: "Write the home directories of a localhost CometBFT testnet", Args: cobra.NoArgs}
	withResult(cmd, func(*cobra.Command, []string) (result, error) {
		if o.Dir == "" {
			return nil, usageError("--dir is required")
		}
		if o.Nodes < 1 || o.Nodes > 64 {
			return nil, usageError("--nodes must be 1..64")
		}
		genesis, err := parseFunds(funds)
		if err != nil {
			return nil, err
		}
		if !free {
			o.Params = ledger.MarketParamsWith(ledger.DefaultParams.ProofDeadlineBlocks, genesis)
		} else if len(genesis) > 0 {
			return nil, usageError("--fund needs the market (drop --free)")
		}
		if phase1 < 0 || phase1 > 24 {
			return nil, usageError("--phase1: log2 of the phase-1 domain, 1..24 (17 for the default circuit)")
		}
		r, err := protocol.WriteTestnet(o, phase1)
		if err != nil {
			return nil, err
		}
		return textFunc{r.Nodes, r.WriteText}, nil
	})
	cmd.Flags().IntVar(&o.Nodes, "nodes", 4, "number of validators")
	cmd.Flags().StringVar(&o.Dir, "dir", "", "output directory (one nodeN home per validator)")
	cmd.Flags().StringVar(&o.ChainID, "chain-id", "veil-testnet", "chain id")
	cmd.Flags().IntVar(&o.BasePort, "base-port", 26600, "node i listens on base+10i (p2p), +1 (CometBFT RPC), +2 (ledger gRPC), +3 (ledger HTTP)")
	cmd.Flags().DurationVar(&o.TimeoutCommit, "timeout-commit", time.Second, "pause after each block (sets the block time)")
	cmd.Flags().BoolVar(&free, "free", false, "no market: no fees, no genesis balances")
	cmd.Flags().IntVar(&phase1, "phase1", 0, "open the chain's trusted-setup phase 1 at genesis for a domain of 2^N (17 for the default circuit), closing after one contribution per validator")
	cmd.Flags().StringArrayVar(&funds, "fund", nil, "a genesis balance KEY=VEIL (repeatable): fund the providers and clients of the chain")
	return cmd
}

func newLedgerNodeCmd(g *globalOptions) *cobra.Command {
	var home, logLevel string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one CometBFT validator with the ledger application in process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if home == "" {
				return usageError("--home is required (a directory written by veil ledger testnet)")
			}
			var logw io.Writer = cmd.ErrOrStderr()
			if g.quiet {
				logw = nil
			}
			return protocol.ServeValidator(cmd.Context(), home, logw, logLevel, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "node home directory")
	cmd.Flags().StringVar(&logLevel, "log-level", "error", "CometBFT log level (error, info, debug)")
	return cmd
}

// queryLedger dials --ledger and runs fn with a 10-second deadline.
func queryLedger(ctx context.Context, addr string, fn func(context.Context, *query.Client) error) error {
	if addr == "" {
		return usageError("--ledger is required (a node's gRPC address, e.g. 127.0.0.1:7070)")
	}
	c, err := query.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return fn(ctx, c)
}

func newLedgerStatusCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{Use: "status", Short: "Print a node's latest signed checkpoint", Args: cobra.NoArgs}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		var st *query.Status
		err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
			st, err = query.StatusOf(ctx, c)
			return err
		})
		return st, err
	})
	cmd.Flags().StringVar(&addr, "ledger", "127.0.0.1:7070", "node gRPC address")
	return cmd
}

func newLedgerEntryCmd() *cobra.Command {
	var addr, out string
	var index uint64
	cmd := &cobra.Command{
		Use:   "entry",
		Short: "Fetch a log entry with its inclusion proof and checkpoint (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b []byte
			err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
				b, err = query.EntryJSON(ctx, c, index)
				return err
			})
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return os.WriteFile(out, b, 0o644)
		},
	}
	cmd.Flags().StringVar(&addr, "ledger", "127.0.0.1:7070", "node gRPC address")
	cmd.Flags().Uint64Var(&index, "index", 0, "log index")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

func newLedgerVerifyInclusionCmd() *cobra.Command {
	var entryPath, keyHex string
	var trustEmbedded bool
	cmd := &cobra.Command{
		Use:   "verify-inclusion",
		Short: "Check offline that a log entry is in the log of a signed checkpoint",
		Long: `Reads an entry (JSON, as written by 'veil ledger entry' or served at
/api/v1/entries/N) and checks that its checkpoint is signed by --key and that
its RFC 6962 inclusion proof leads from the transaction to the checkpoint's
root. No network access.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if entryPath == "" {
			return nil, usageError("--entry is required (a file, or - for stdin)")
		}
		var key []byte
		switch {
		case keyHex != "":
			k, err := hex.DecodeString(keyHex)
			if err != nil || len(k) != 32 {
				return nil, usageError("--key must be a 64-digit hex ed25519 public key")
			}
			key = k
		case !trustEmbedded:
			return nil, usageError("--key (the node's public key, printed by veil ledger serve) is required, or --trust-embedded-key")
		}
		res, err := query.VerifyEntryFile(entryPath, cmd.InOrStdin(), key)
		if err != nil {
			return nil, err
		}
		if res.KeyFromEntry {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning: the signing key was taken from the entry itself; pass --key to check who signed it")
		}
		return res, nil
	})
	cmd.Flags().StringVar(&entryPath, "entry", "", "entry JSON file (- for stdin)")
	cmd.Flags().StringVar(&keyHex, "key", "", "trusted node public key (hex)")
	cmd.Flags().BoolVar(&trustEmbedded, "trust-embedded-key", false, "accept the key named in the checkpoint (checks integrity, not who signed)")
	return cmd
}
