package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// proofBatch is the circuit batch size of a verifiable deployment: the k-1
// challenges of one request with k = 4 blocks.
const proofBatch = 3

// ledgerFlags say which ledger node to talk to and what to trust about it.
// There is no default node: the one a client trusts must not be chosen by
// the server it checks.
type ledgerFlags struct {
	addr, tlsCA      string
	nodeKey, genesis string
	chainID          string
}

func (l *ledgerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.addr, "ledger", "", "gRPC address of a verifier ledger node (required)")
	fs.StringVar(&l.tlsCA, "ledger-tls-ca", "", "CA certificate (PEM) of the ledger node; enables TLS")
	fs.StringVar(&l.nodeKey, "ledger-key", "", "trust a single ledger node whose checkpoint key is this (64 hex digits)")
	fs.StringVar(&l.genesis, "ledger-genesis", "", "trust a replicated ledger: a head counts when more than 2/3 of this genesis file's validators signed it")
	fs.StringVar(&l.chainID, "chain-id", "", "the ledger's chain id (default: the genesis file's, or the node's own, checked against its signed checkpoints)")
}

// reader connects to the ledger and pins what the flags say to trust.
func (l *ledgerFlags) reader(ctx context.Context) (*trust.Reader, *query.Client, error) {
	if l.addr == "" {
		return nil, nil, usageError("--ledger: name the verifier ledger node to use (the server's own is not a default: it is the party being checked)")
	}
	if (l.nodeKey == "") == (l.genesis == "") {
		return nil, nil, usageError("give --ledger-key (a single node you trust) or --ledger-genesis (a replicated chain's validators)")
	}
	var a trust.Anchor
	if l.genesis != "" {
		var err error
		if a, err = trust.AnchorFromGenesis(l.genesis); err != nil {
			return nil, nil, err
		}
		if l.chainID != "" && l.chainID != a.ChainID {
			return nil, nil, usageError("--chain-id %q, the genesis file is for %q", l.chainID, a.ChainID)
		}
	} else {
		k, err := hex.DecodeString(l.nodeKey)
		if err != nil || len(k) != 32 {
			return nil, nil, usageError("--ledger-key: want 64 hex digits (an ed25519 public key)")
		}
		a.NodeKey = k
	}
	c, err := query.DialWith(l.addr, query.DialOptions{TLSCA: l.tlsCA})
	if err != nil {
		return nil, nil, err
	}
	if a.ChainID == "" {
		a.ChainID = l.chainID
	}
	if a.ChainID == "" {
		// Learned from the node; a lie is caught when its heads do not
		// verify for that chain under the pinned key.
		ci, err := c.ChainInfo(ctx)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		a.ChainID = ci.GetChainId()
	}
	return &trust.Reader{API: c, Anchor: a}, c, nil
}

// modelKeys returns the model's proving keys for proofBatch challenges,
// running a ceremony of one the first time.
func (g *globalOptions) modelKeys(ctx context.Context, mf *model.File) (zk.Salt, *zk.ProvingKey, error) {
	quietGnark()
	salt, _, err := g.loadSalt(mf, "", true)
	if err != nil {
		return salt, nil, err
	}
	pk, err := g.keys(ctx, mf.Model, proofBatch, true)
	return salt, pk, err
}

// verifiableOptions are the inputs of `veil infer --verify`.
type verifiableOptions struct {
	server, tlsCA, modelID string
	ledger                 ledgerFlags
	img                    pixels.Image
	label                  int
}

// verifiableResult is what `veil infer --verify` prints.
type verifiableResult struct {
	Class        int       `json:"class"`
	Guaranteed   bool      `json:"class_guaranteed"`
	Scores       []float64 `json:"scores"`
	Label        *int      `json:"label,omitempty"`
	RequestID    string    `json:"request_id"`
	RequestKey   string    `json:"request_key"`
	ReceiptIndex uint64    `json:"receipt_index"`
	RevealIndex  uint64    `json:"reveal_index"`
	ProofIndex   uint64    `json:"proof_index"`
	VerdictIndex uint64    `json:"verdict_index"`
	Accept       bool      `json:"accept"`
	Reason       string    `json:"reason"`
	Detail       string    `json:"detail"`
	LatencyMS    float64   `json:"latency_ms"`
	ProtocolMS   float64   `json:"protocol_overhead_ms"`
}

// inferVerifiable runs the whole protocol for one image.
func inferVerifiable(ctx context.Context, g *globalOptions, o verifiableOptions) (result, error) {
	reader, lc, err := o.ledger.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	conn, err := client.Dial(o.server, client.Options{TLSCA: o.tlsCA})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	dir, err := g.ensureDataDir()
	if err != nil {
		return nil, err
	}
	key, err := protocol.LoadOrCreateIdentity(filepath.Join(dir, "client", "identity.key"))
	if err != nil {
		return nil, err
	}
	pool, err := dataset.MNISTTrain()
	if err != nil {
		return nil, err
	}
	c, err := protocol.Connect(ctx, protocol.ConnectOptions{Conn: conn, Ledger: reader, ModelID: o.modelID, DataDir: dir, Key: key, Pool: pool})
	if err != nil {
		return nil, err
	}
	req, err := c.Classify(ctx, o.img)
	if errors.Is(err, protocol.ErrBadReceipt) {
		return nil, fmt.Errorf("%w (no challenge revealed; the server's answer is not trusted)", err)
	}
	if err != nil {
		return nil, err
	}
	receipt, reveal, err := c.Reveal(ctx, req)
	if err != nil {
		return nil, err
	}
	out, err := c.Settle(ctx, req, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	res := verifiableResult{Class: req.Class, Guaranteed: req.Guaranteed, Scores: req.Scores, RequestID: req.ID, RequestKey: hex.EncodeToString(req.Key[:]),
		ReceiptIndex: receipt, RevealIndex: reveal, ProofIndex: out.ProofIndex, VerdictIndex: out.VerdictIndex,
		Accept: out.Accept, Reason: out.Reason.String(), Detail: out.Detail, ProtocolMS: req.ProtocolMS,
		LatencyMS: req.Result.EncryptMS + req.Result.RoundTripMS + req.Result.DecryptMS}
	if o.label >= 0 {
		res.Label = &o.label
	}
	text := func(w io.Writer) error {
		fmt.Fprintf(w, "class %d", res.Class)
		if o.label >= 0 {
			fmt.Fprintf(w, " (MNIST label %d)", o.label)
		}
		fmt.Fprintf(w, ", %.0f ms (protocol overhead %.2f ms); %s\n", res.LatencyMS, res.ProtocolMS,
			map[bool]string{true: "the committed model gives this class (margin over 2x tolerance)", false: "within the tolerance of another class: not guaranteed"}[req.Guaranteed])
		fmt.Fprintf(w, "request key %s: receipt #%d, reveal #%d, proof #%d, verdict #%d\n", res.RequestKey, receipt, reveal, out.ProofIndex, out.VerdictIndex)
		_, err := fmt.Fprintf(w, "verdict %s (%s): %s\n", map[bool]string{true: "ACCEPT", false: "REJECT"}[out.Accept], out.Reason, out.Detail)
		return err
	}
	if !out.Accept {
		return textFunc{res, text}, fmt.Errorf("the server's answer was rejected")
	}
	return textFunc{res, text}, nil
}

// logger for the verifiable commands.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
