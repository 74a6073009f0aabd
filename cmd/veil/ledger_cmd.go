package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/zkverify"
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

// printAddrs tells where a node serves (query.ListenAndServe's ready).
func printAddrs(w io.Writer) func(grpcAt, httpAt net.Addr) {
	return func(grpcAt, httpAt net.Addr) {
		if grpcAt != nil {
			fmt.Fprintf(w, "gRPC  %s\n", grpcAt)
		}
		if httpAt != nil {
			fmt.Fprintf(w, "web   http://%s/\n", httpAt)
		}
	}
}

func newLedgerServeCmd(g *globalOptions) *cobra.Command {
	var dbPath, chainID, grpcAddr, httpAddr string
	var blockInterval time.Duration
	var market bool
	var funds []string
	var phase1, minContrib int
	var closeHeight, window uint64
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a single-node ledger (embedded bbolt store) with its gRPC and HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := g.ensureDataDir("ledger")
			if err != nil {
				return err
			}
			if dbPath == "" {
				dbPath = filepath.Join(dir, "ledger.db")
			}
			keyPath := filepath.Join(dir, "node.key")
			key, created, err := ledger.LoadOrCreateNodeKey(keyPath)
			if err != nil {
				return err
			}
			if blockInterval <= 0 {
				return usageError("--block-interval must be positive: deadlines are counted in blocks")
			}
			genesis, err := parseFunds(funds)
			if err != nil {
				return err
			}
			var params ledger.Params // a new ledger: DefaultParams (no fees); an existing one: its own
			if market || len(genesis) > 0 {
				params = marketParams(ledger.DefaultParams.ProofDeadlineBlocks, genesis)
			}
			if phase1 != 0 {
				if phase1 < 1 || phase1 > 24 || minContrib < 1 {
					return usageError("--phase1: log2 of the phase-1 domain, 1..24 (17 for the default circuit); --min-contributions at least 1")
				}
				if params.IsZero() {
					params = ledger.DefaultParams
				}
				params.Ceremony = ledger.CeremonyParams{Phase1Domain: 1 << phase1, MinContributions: uint32(minContrib), Phase1CloseHeight: closeHeight, Phase2Window: window}
			}
			n, err := embedded.Open(embedded.Config{Path: dbPath, ChainID: chainID, Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), SigningKey: key,
				BlockInterval: blockInterval, Params: params})
			if err != nil {
				return err
			}
			defer n.Close()
			_, size, _, _ := n.Head()
			w := cmd.ErrOrStderr()
			if created {
				fmt.Fprintf(w, "created node key %s\n", keyPath)
			}
			fmt.Fprintf(w, "ledger %s: %s, %d entries\nnode key %s (checkpoints are signed with it)\n", chainID, dbPath, size, hex.EncodeToString(n.PublicKey()))
			return query.ListenAndServe(cmd.Context(), n, grpcAddr, httpAddr, printAddrs(w))
		},
	}
	cmd.Flags().StringVar(&dbPath, "db", "", "database file (default <data>/ledger/ledger.db)")
	cmd.Flags().StringVar(&chainID, "chain-id", ledger.DefaultChainID, "ledger chain id (transactions name it)")
	cmd.Flags().StringVar(&grpcAddr, "grpc", "127.0.0.1:7070", "gRPC listen address (off: none)")
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:7071", "HTTP listen address for JSON and the web page (off: none)")
	cmd.Flags().DurationVar(&blockInterval, "block-interval", time.Second, "one block per interval (heights measure time: deadlines are in blocks)")
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
			o.Params = marketParams(ledger.DefaultParams.ProofDeadlineBlocks, genesis)
		} else if len(genesis) > 0 {
			return nil, usageError("--fund needs the market (drop --free)")
		}
		if phase1 != 0 {
			if phase1 < 1 || phase1 > 24 {
				return nil, usageError("--phase1: log2 of the phase-1 domain, 1..24 (17 for the default circuit)")
			}
			homes := make([]string, o.Nodes)
			for i := range homes {
				homes[i] = cometbft.NodeDir(o.Dir, i)
			}
			if err := protocol.OpenTestnetPhase1(&o.Params, 1<<phase1, homes); err != nil {
				return nil, err
			}
		}
		if err := cometbft.WriteTestnet(o); err != nil {
			return nil, err
		}
		type node struct {
			Home string `json:"home"`
			*cometbft.LedgerConfig
		}
		var nodes []node
		for i := 0; i < o.Nodes; i++ {
			home := cometbft.NodeDir(o.Dir, i)
			lc, err := cometbft.ReadLedgerConfig(home)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, node{home, lc})
		}
		return textFunc{nodes, func(w io.Writer) error {
			fmt.Fprintf(w, "wrote %d validators of chain %s under %s\n", o.Nodes, o.ChainID, o.Dir)
			for _, n := range nodes {
				fmt.Fprintf(w, "  veil ledger node --home %s    # gRPC %s, web http://%s/\n", n.Home, n.GRPCAddr, n.HTTPAddr)
			}
			if phase1 != 0 {
				fmt.Fprintf(w, "phase 1 (2^%d) is open: each validator contributes with its %s when it starts, in turn, and the last one closes and seals it (%d contributions); others may contribute too (veil setup contribute --ledger ADDR)\n", phase1, protocol.ContributorKeyFile, o.Nodes)
				fmt.Fprintf(w, "registrations on this chain must name a sealed phase-2 ceremony (docs/zk.md); the contributor keys are funded for their phase-1 fees; fund providers and clients with --fund\n")
			}
			return nil
		}}, nil
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
			lc, err := cometbft.ReadLedgerConfig(home)
			if err != nil {
				return err
			}
			var logw io.Writer = cmd.ErrOrStderr()
			if g.quiet {
				logw = nil
			}
			n, err := cometbft.StartNode(cmd.Context(), home, cometbft.NodeOptions{Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), Log: logw, LogLevel: logLevel})
			if err != nil {
				return err
			}
			defer n.Stop()
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "validator %s (%s) running; node key %s\n", home, n.NodeID(), hex.EncodeToString(n.PublicKey()))
			go takePartInPhase1(cmd.Context(), n, home, n.ValidatorIndex(), w)
			return query.ListenAndServe(cmd.Context(), n, lc.GRPCAddr, lc.HTTPAddr, printAddrs(w))
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "node home directory")
	cmd.Flags().StringVar(&logLevel, "log-level", "error", "CometBFT log level (error, info, debug)")
	return cmd
}

// takePartInPhase1 runs the validator's part in the chain's phase 1 (if it
// is open and home has a contributor key) beside the node, reporting to w.
func takePartInPhase1(ctx context.Context, n ledger.CeremonyAPI, home string, turn int, w io.Writer) {
	say := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	out, err := protocol.ValidatorPhase1(ctx, n, home, turn, say)
	switch {
	case err != nil && ctx.Err() == nil:
		say("phase 1: %v (contribute by hand: veil setup contribute --ledger ADDR --key %s)", err, protocol.ContributorKeyPath(home))
	case out != nil && out.Contribution != nil:
		say("phase 1 is sealed, with this validator's contribution %x", out.Contribution.Hash[:8])
	case out != nil && !out.Included:
		say("WARNING: phase 1 was sealed WITHOUT a contribution by this validator's key: its randomness is not in the SRS")
	}
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
		var cp *ledgerv1.Checkpoint
		err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
			cp, err = c.Checkpoint(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := ledger.VerifyCheckpoint(cp, nil); err != nil {
			return nil, fmt.Errorf("the node's checkpoint does not verify: %w", err)
		}
		return textFunc{cp, func(w io.Writer) error { _, err := fmt.Fprintf(w, "%s", cp.Note); return err }}, nil
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
			var e *ledgerv1.Entry
			err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
				e, err = c.Entry(ctx, index)
				return err
			})
			if err != nil {
				return err
			}
			b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(e)
			if err != nil {
				return err
			}
			b = append(b, '\n')
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
		var b []byte
		var err error
		if entryPath == "-" {
			b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4<<20))
		} else {
			b, err = os.ReadFile(entryPath)
		}
		if err != nil {
			return nil, fmt.Errorf("read entry: %w", err)
		}
		res, err := query.VerifyEntryJSON(b, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entryPath, err)
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
