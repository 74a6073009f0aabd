package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// ledgerFlags say which ledger node to talk to and what to trust about it.
// There is no default node: the one a client trusts must not be chosen by
// the server it checks.
type ledgerFlags struct {
	addr, tlsCA      string
	nodeKey, genesis string
	chainID          string
	pinCommitment    string
	pinServer        string
	requireCeremony  bool
	contributors     []string
}

func (l *ledgerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.addr, "ledger", "", "gRPC address of a verifier ledger node (required)")
	fs.StringVar(&l.tlsCA, "ledger-tls-ca", "", "CA certificate (PEM) of the ledger node; enables TLS")
	fs.StringVar(&l.nodeKey, "ledger-key", "", "trust a single ledger node whose checkpoint key is this (64 hex digits)")
	fs.StringVar(&l.genesis, "ledger-genesis", "", "trust a replicated ledger: a head counts when more than 2/3 of this genesis file's validators signed it")
	fs.StringVar(&l.chainID, "chain-id", "", "the ledger's chain id (default: the genesis file's, or the node's own, checked against its signed checkpoints)")
	fs.StringVar(&l.pinCommitment, "pin-commitment", "", "refuse the model unless it is registered with this commitment (64 hex digits)")
	fs.StringVar(&l.pinServer, "pin-server-key", "", "refuse the model unless it is served under this server key (64 hex digits)")
	fs.BoolVar(&l.requireCeremony, "require-ceremony", false, "refuse a model whose verifying key was not derived by the ledger from a sealed ceremony (its owner's own setup is INSECURE)")
	fs.StringSliceVar(&l.contributors, "trust-contributor", nil, "refuse the model unless one of these ed25519 keys (hex; 'self' = this client's ledger identity) contributed to the ledger's phase 1 and to the model's phase 2 (implies --require-ceremony)")
}

// pin is what the flags pin about the model's registration (model ids are
// first come, first served).
func (l *ledgerFlags) pin(self func() (ed25519.PublicKey, error)) (protocol.Pin, error) {
	var p protocol.Pin
	if l.pinCommitment != "" {
		c, err := zk.ParseCommitment(l.pinCommitment)
		if err != nil {
			return p, usageError("--pin-commitment: %v", err)
		}
		p.Commitment = &c
	}
	if l.pinServer != "" {
		k, err := parseKey(l.pinServer, "--pin-server-key")
		if err != nil {
			return p, err
		}
		p.ServerKey = k
	}
	p.RequireCeremony = l.requireCeremony
	for _, c := range l.contributors {
		if c == "self" {
			k, err := self()
			if err != nil {
				return p, fmt.Errorf("--trust-contributor self: %w", err)
			}
			p.Contributors = append(p.Contributors, k)
			continue
		}
		k, err := hex.DecodeString(c)
		if err != nil || len(k) != 32 {
			return p, usageError("--trust-contributor %q: want 64 hex digits (an ed25519 public key) or 'self'", c)
		}
		p.Contributors = append(p.Contributors, k)
	}
	return p, nil
}

// reader connects to the ledger and pins what the flags say to trust.
func (l *ledgerFlags) reader(ctx context.Context) (*trust.Reader, *query.Client, error) {
	if l.addr == "" {
		return nil, nil, usageError("--ledger: name the verifier ledger node to use (the server's own is not a default: it is the party being checked)")
	}
	if (l.nodeKey == "") == (l.genesis == "") {
		return nil, nil, usageError("give --ledger-key (a single node you trust) or --ledger-genesis (a replicated chain's validators)")
	}
	o := trust.DialOptions{Addr: l.addr, TLSCA: l.tlsCA, GenesisFile: l.genesis, ChainID: l.chainID}
	if l.nodeKey != "" {
		k, err := parseKey(l.nodeKey, "--ledger-key")
		if err != nil {
			return nil, nil, err
		}
		o.NodeKey = k
	}
	return trust.Dial(ctx, o)
}

// verifiableOptions are the inputs of `veil infer --verify`.
type verifiableOptions struct {
	server, tlsCA, modelID string
	ledger                 ledgerFlags
	img                    pixels.Image
	label                  int
	maxPrice               uint64
	dispute                bool
	maxPerKey              int
}

// inferVerifiable runs the whole protocol for one image.
func inferVerifiable(ctx context.Context, g *globalOptions, o verifiableOptions) (result, error) {
	pin, err := o.ledger.pin(g.store().SelfKey)
	if err != nil {
		return nil, err
	}
	reader, lc, err := o.ledger.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	dir, err := g.ensureDataDir()
	if err != nil {
		return nil, err
	}
	v, err := protocol.ClassifyVerified(ctx, protocol.VerifiedOptions{Server: o.server, ServerTLSCA: o.tlsCA, ModelID: o.modelID, DataDir: dir, Ledger: reader, Pin: pin, Image: o.img,
		MaxPrice: o.maxPrice, Dispute: o.dispute, MaxRequestsPerKey: o.maxPerKey})
	if err != nil {
		return nil, err
	}
	if o.label >= 0 {
		v.Label = &o.label
	}
	if !v.Accept {
		return v, fmt.Errorf("the server's answer was rejected")
	}
	return v, nil
}

// logger for the verifiable commands.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// proofBatch is the circuit batch size of a verifiable deployment
// (protocol.ProofBatch).
const proofBatch = protocol.ProofBatch

// modelKeys and modelSalt are the data directory's (protocol.LocalStore).
func (g *globalOptions) modelKeys(ctx context.Context, mf *model.File) (zk.Salt, *zk.ProvingKey, error) {
	return g.store().ModelKeys(ctx, mf)
}

func (g *globalOptions) modelSalt(ctx context.Context, mf *model.File) (zk.Salt, error) {
	return g.store().ModelSalt(ctx, mf)
}
