package protocol

// Ledger nodes as the veil command runs them: a single node on an embedded
// store, or one CometBFT validator, each with the node-side verifiers and
// the gRPC and HTTP API.

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/zkverify"
)

// LedgerNodeOptions configure a single-node ledger.
type LedgerNodeOptions struct {
	// Dir holds the node's key (node.key, made the first time) and, unless
	// DB names another file, its database (ledger.db).
	Dir, DB string
	ChainID string
	// BlockInterval is the time of one block (deadlines are in blocks).
	BlockInterval time.Duration
	// Params are a new ledger's (ledger.ChainParams); an existing one keeps
	// its own.
	Params ledger.Params
	// GRPC and HTTP are the API's listen addresses ("off": none).
	GRPC, HTTP string
	// Log gets the node's key, size and addresses.
	Log io.Writer
}

// ServeLedgerNode opens (or creates) the ledger and serves its API until
// ctx ends.
func ServeLedgerNode(ctx context.Context, o LedgerNodeOptions) error {
	if o.DB == "" {
		o.DB = filepath.Join(o.Dir, "ledger.db")
	}
	keyPath := filepath.Join(o.Dir, "node.key")
	key, created, err := ledger.LoadOrCreateNodeKey(keyPath)
	if err != nil {
		return err
	}
	n, err := embedded.Open(embedded.Config{Path: o.DB, ChainID: o.ChainID, Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), SigningKey: key,
		BlockInterval: o.BlockInterval, Params: o.Params})
	if err != nil {
		return err
	}
	defer n.Close()
	_, size, _, _ := n.Head()
	if created {
		fmt.Fprintf(o.Log, "created node key %s\n", keyPath)
	}
	fmt.Fprintf(o.Log, "ledger %s: %s, %d entries\nnode key %s (checkpoints are signed with it)\n", o.ChainID, o.DB, size, hex.EncodeToString(n.PublicKey()))
	return query.ListenAndServe(ctx, n, o.GRPC, o.HTTP, printAddrs(o.Log))
}

// ServeValidator runs the CometBFT validator whose home directory `veil
// ledger testnet` wrote, and its API, until ctx ends. CometBFT logs at
// logLevel on cometLog (nil: none); the node's id, key and addresses go
// to log.
func ServeValidator(ctx context.Context, home string, cometLog io.Writer, logLevel string, log io.Writer) error {
	lc, err := cometbft.ReadLedgerConfig(home)
	if err != nil {
		return err
	}
	n, err := cometbft.StartNode(ctx, home, cometbft.NodeOptions{Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), Log: cometLog, LogLevel: logLevel})
	if err != nil {
		return err
	}
	defer n.Stop()
	fmt.Fprintf(log, "validator %s (%s) running; node key %s\n", home, n.NodeID(), hex.EncodeToString(n.PublicKey()))
	go validatorPhase1(ctx, n, home, n.ValidatorIndex(), log)
	return query.ListenAndServe(ctx, n, lc.GRPCAddr, lc.HTTPAddr, printAddrs(log))
}

// validatorPhase1 runs the validator's part in the chain's phase 1 (if it
// is open and home has a contributor key) beside the node, reporting to w.
func validatorPhase1(ctx context.Context, n ledger.CeremonyAPI, home string, turn int, w io.Writer) {
	say := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	out, err := ValidatorPhase1(ctx, n, home, turn, say)
	switch {
	case err != nil && ctx.Err() == nil:
		say("phase 1: %v (contribute by hand: veil setup contribute --ledger ADDR --key %s)", err, ContributorKeyPath(home))
	case out != nil && out.Contribution != nil:
		say("phase 1 is sealed, with this validator's contribution %x", out.Contribution.Hash[:8])
	case out != nil && !out.Included:
		say("WARNING: phase 1 was sealed WITHOUT a contribution by this validator's key: its randomness is not in the SRS")
	}
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

// Testnet is what WriteTestnet wrote: one home per validator.
type Testnet struct {
	ChainID    string
	Dir        string
	Phase1Log2 int // 0: no phase 1
	Nodes      []TestnetNode
}

// TestnetNode is one validator's home and addresses.
type TestnetNode struct {
	Home string `json:"home"`
	*cometbft.LedgerConfig
}

// WriteTestnet writes the homes of a localhost CometBFT testnet (`veil
// ledger testnet`), with the chain's phase 1 open at 2^phase1Log2 when it
// is not 0, every validator a required contributor (OpenTestnetPhase1).
func WriteTestnet(o cometbft.TestnetOptions, phase1Log2 int) (*Testnet, error) {
	if phase1Log2 != 0 {
		homes := make([]string, o.Nodes)
		for i := range homes {
			homes[i] = cometbft.NodeDir(o.Dir, i)
		}
		if err := OpenTestnetPhase1(&o.Params, 1<<phase1Log2, homes); err != nil {
			return nil, err
		}
	}
	if err := cometbft.WriteTestnet(o); err != nil {
		return nil, err
	}
	t := &Testnet{ChainID: o.ChainID, Dir: o.Dir, Phase1Log2: phase1Log2}
	for i := 0; i < o.Nodes; i++ {
		home := cometbft.NodeDir(o.Dir, i)
		lc, err := cometbft.ReadLedgerConfig(home)
		if err != nil {
			return nil, err
		}
		t.Nodes = append(t.Nodes, TestnetNode{home, lc})
	}
	return t, nil
}

// WriteText says how to start the validators.
func (t *Testnet) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "wrote %d validators of chain %s under %s\n", len(t.Nodes), t.ChainID, t.Dir)
	for _, n := range t.Nodes {
		fmt.Fprintf(w, "  veil ledger node --home %s    # gRPC %s, web http://%s/\n", n.Home, n.GRPCAddr, n.HTTPAddr)
	}
	if t.Phase1Log2 != 0 {
		fmt.Fprintf(w, "phase 1 (2^%d) is open: each validator contributes with its %s when it starts, in turn, and phase 1 cannot close before all %d have (others may contribute too: veil setup contribute --ledger ADDR)\n", t.Phase1Log2, ContributorKeyFile, len(t.Nodes))
		fmt.Fprintf(w, "registrations on this chain must name a sealed phase-2 ceremony (docs/zk.md); the contributor keys are funded for their phase-1 fees; fund providers and clients with --fund\n")
	}
	return nil
}
