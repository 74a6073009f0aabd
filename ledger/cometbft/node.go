package cometbft

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/mempool"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	"github.com/cometbft/cometbft/types"
	"github.com/spf13/viper"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// LedgerConfigFile is Veil's own per-node settings file, next to
// CometBFT's config.toml.
const LedgerConfigFile = "veil-ledger.json"

// LedgerConfig holds the settings CometBFT's config.toml has no place for.
type LedgerConfig struct {
	GRPCAddr string `json:"grpc_addr"` // query API (gRPC)
	HTTPAddr string `json:"http_addr"` // query API (JSON over HTTP and the web page)
}

// ReadLedgerConfig reads home/config/veil-ledger.json.
func ReadLedgerConfig(home string) (*LedgerConfig, error) {
	b, err := os.ReadFile(filepath.Join(home, "config", LedgerConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read ledger node settings: %w", err)
	}
	var c LedgerConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse %s: %w", LedgerConfigFile, err)
	}
	return &c, nil
}

// NodeOptions configure StartNode.
type NodeOptions struct {
	Verifier ledger.ProofVerifier
	// Disputes checks fraud proofs (ledger/heverify). Every validator of a
	// chain with offers needs one, or it refuses what the others accept.
	Disputes ledger.DisputeVerifier
	// Ceremony verifies setup contributions (ledger/zkverify.NewCeremony);
	// every validator of a chain with a phase 1 needs one.
	Ceremony ledger.CeremonyVerifier
	// Log receives CometBFT's log (nil: discard). LogLevel is CometBFT's
	// filter, e.g. "info" or "error" (default "error").
	Log      io.Writer
	LogLevel string
	// Configure, if set, adjusts the loaded CometBFT config before the
	// node starts (an embedding application's overrides, e.g. shorter
	// consensus timeouts on loopback).
	Configure func(*cfg.Config)
	// mutateProposal makes this node a malicious proposer (tests).
	mutateProposal func([][]byte) [][]byte
}

// Node is a CometBFT validator with the ledger app in process. It
// implements ledger.API: Submit goes through CometBFT's mempool and waits
// for the block that commits the transaction; reads come from the local
// store.
type Node struct {
	*ledger.Store
	app     *App
	node    *nm.Node
	client  *local.Local
	home    string
	genesis *types.GenesisDoc
	// validator is the index of this node's validator key among the
	// genesis validators, -1 if none.
	validator int
}

var _ ledger.API = (*Node)(nil)

// LoadConfig reads home/config/config.toml the way the cometbft command does.
func LoadConfig(home string) (*cfg.Config, error) {
	conf := cfg.DefaultConfig()
	v := viper.New()
	v.SetConfigFile(filepath.Join(home, "config", "config.toml"))
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read CometBFT config in %s: %w", home, err)
	}
	if err := v.Unmarshal(conf); err != nil {
		return nil, fmt.Errorf("parse CometBFT config in %s: %w", home, err)
	}
	conf.SetRoot(home)
	if err := conf.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("CometBFT config in %s: %w", home, err)
	}
	return conf, nil
}

// StartNode opens the ledger store under home/data and starts the
// validator. Stop it with Stop.
func StartNode(ctx context.Context, home string, o NodeOptions) (*Node, error) {
	conf, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	if o.Configure != nil {
		o.Configure(conf)
	}
	gen, err := types.GenesisDocFromFile(conf.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	nodeKey, err := p2p.LoadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	// The node key signs this node's checkpoints too: one key per node.
	signing := ed25519.PrivateKey(nodeKey.PrivKey.Bytes())
	if len(signing) != ed25519.PrivateKeySize {
		return nil, errors.New("node key is not ed25519")
	}
	params, err := paramsOf(gen)
	if err != nil {
		return nil, err
	}
	store, err := ledger.Open(filepath.Join(conf.DBDir(), "veil-ledger.db"), ledger.Options{ChainID: gen.ChainID, Verifier: o.Verifier, Disputes: o.Disputes, Ceremony: o.Ceremony, SigningKey: signing, Params: params})
	if err != nil {
		return nil, err
	}
	app := NewApp(store)
	app.mutateProposal = o.mutateProposal
	pv := privval.LoadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	logger := cmtlog.NewNopLogger()
	if o.Log != nil {
		level := o.LogLevel
		if level == "" {
			level = "error"
		}
		opt, err := cmtlog.AllowLevel(level)
		if err != nil {
			store.Close()
			return nil, err
		}
		logger = cmtlog.NewFilter(cmtlog.NewTMLogger(cmtlog.NewSyncWriter(o.Log)), opt)
	}
	node, err := nm.NewNode(ctx, conf, pv, nodeKey, proxy.NewConnSyncLocalClientCreator(app),
		func() (nm.ChecksummedGenesisDoc, error) { return genesisProvider(conf) },
		cfg.DefaultDBProvider, nm.DefaultMetricsProvider(conf.Instrumentation), logger)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("create CometBFT node: %w", err)
	}
	if err := node.Start(); err != nil {
		store.Close()
		return nil, fmt.Errorf("start CometBFT node: %w", err)
	}
	index := -1
	if pub, err := pv.GetPubKey(); err == nil {
		for i, v := range gen.Validators {
			if bytes.Equal(v.PubKey.Bytes(), pub.Bytes()) {
				index = i
			}
		}
	}
	return &Node{Store: store, app: app, node: node, client: local.New(node), home: home, genesis: gen, validator: index}, nil
}

// ValidatorIndex is this node's place among the genesis validators (-1 if
// its validator key is not one of them).
func (n *Node) ValidatorIndex() int { return n.validator }

func genesisProvider(conf *cfg.Config) (nm.ChecksummedGenesisDoc, error) {
	return nm.DefaultGenesisDocProviderFunc(conf)()
}

// Stop stops the validator and closes the store.
func (n *Node) Stop() error {
	var errs []error
	if n.node.IsRunning() {
		if err := n.node.Stop(); err != nil {
			errs = append(errs, err)
		}
		n.node.Wait()
	}
	errs = append(errs, n.Store.Close())
	return errors.Join(errs...)
}

// Height returns the latest height CometBFT has committed on this node.
func (n *Node) Height() int64 { return n.node.BlockStore().Height() }

// NodeID returns the CometBFT node id.
func (n *Node) NodeID() string { return string(n.node.NodeInfo().ID()) }

// Submit broadcasts tx and waits for the block that commits it. If this
// node's CheckTx rejects it, the rejection is returned at once. Submitting a
// transaction someone else submitted already is harmless: if it is in the
// log, the answer is CODE_DUPLICATE_TX with its index; if it is still in
// the mempool, Submit waits for its block like the first submitter.
func (n *Node) Submit(ctx context.Context, tx []byte) (*ledgerv1.SubmitResponse, error) {
	ch, cancel := n.app.wait(tx)
	defer cancel()
	res, err := n.client.BroadcastTxSync(ctx, tx)
	var invalid mempool.ErrInvalidTx
	switch {
	case err != nil && strings.Contains(err.Error(), "already exists in cache"):
		if r := n.Store.Check(tx); r.Code == ledgerv1.Code_CODE_DUPLICATE_TX {
			return response(r), &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
		}
		// In the mempool: its block will come.
	case errors.As(err, &invalid) && invalid.Code == uint32(ledgerv1.Code_CODE_DUPLICATE_TX):
		r := n.Store.Check(tx)
		return response(r), &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
	case errors.As(err, &invalid):
		// CheckTx refused it (CometBFT v1 reports that as an error).
		h := ledger.TxHash(tx)
		r := &ledgerv1.SubmitResponse{Code: ledgerv1.Code(invalid.Code), Reason: invalid.Log, TxHash: h[:]}
		n.app.rejected.Add(tx, r.Code, r.Reason, "submit")
		return r, &ledger.Rejection{Code: r.Code, Reason: r.Reason}
	case err != nil:
		return nil, fmt.Errorf("broadcast transaction: %w", err)
	case res.Code == uint32(ledgerv1.Code_CODE_DUPLICATE_TX):
		r := n.Store.Check(tx)
		return response(r), &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
	case res.Code != 0:
		h := ledger.TxHash(tx)
		r := &ledgerv1.SubmitResponse{Code: ledgerv1.Code(res.Code), Reason: res.Log, TxHash: h[:]}
		n.app.rejected.Add(tx, r.Code, r.Reason, "submit")
		return r, &ledger.Rejection{Code: r.Code, Reason: r.Reason}
	}
	r, err := awaitCommit(ctx, ch, droppedPoll, func() bool {
		return !n.inMempool(tx) && n.Store.Check(tx).Code != ledgerv1.Code_CODE_DUPLICATE_TX
	})
	if err != nil {
		return nil, err
	}
	resp := response(r)
	if !r.OK() {
		n.app.rejected.Add(tx, r.Code, r.Reason, "submit")
		return resp, &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
	}
	return resp, nil
}

// ErrTxDropped: a transaction CheckTx admitted left the mempool without
// being committed (evicted from a full mempool, say). Submitting it again
// is safe: a copy that did get committed is answered CODE_DUPLICATE_TX.
var ErrTxDropped = errors.New("the transaction left the mempool without being committed; submit it again")

// droppedPoll is how often Submit checks that its transaction is still in
// the mempool or committed.
const droppedPoll = time.Second

// awaitCommit waits for the block result of a transaction in the mempool
// (ch). Every poll it asks dropped whether the transaction has left the
// mempool without being committed; on two answers in a row (a commit in
// between would have been seen by the second) it returns ErrTxDropped, so
// that the submitter does not wait until its context ends.
func awaitCommit(ctx context.Context, ch <-chan ledger.Result, poll time.Duration, dropped func() bool) (ledger.Result, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	gone := 0
	for {
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			return ledger.Result{}, fmt.Errorf("waiting for the transaction to be committed: %w", ctx.Err())
		case <-t.C:
			if !dropped() {
				gone = 0
				continue
			}
			if gone++; gone >= 2 {
				return ledger.Result{}, ErrTxDropped
			}
		}
	}
}

// inMempool reports whether tx is in this node's mempool (true when the
// mempool cannot say).
func (n *Node) inMempool(tx []byte) bool {
	m, ok := n.node.Mempool().(interface{ InMempool(types.TxKey) bool })
	return !ok || m.InMempool(types.Tx(tx).Key())
}

// App returns the node's ABCI application.
func (n *Node) App() *App { return n.app }

// Rejections implements ledger.API.
func (n *Node) Rejections(context.Context) ([]*ledgerv1.Rejected, error) {
	return n.app.Rejections(), nil
}

// CatchingUp reports whether the node is still syncing blocks from its
// peers (its state is behind the chain's until it stops).
func (n *Node) CatchingUp() bool { return n.node.ConsensusReactor().WaitSync() }
