package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/protocol/federated"
)

// ledgerFlags say which ledger node to talk to and what to trust about it
// (protocol.LedgerTrust).
type ledgerFlags struct{ protocol.LedgerTrust }

func (l *ledgerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.Addr, "ledger", "", "gRPC address of a verifier ledger node (required)")
	fs.StringVar(&l.TLSCA, "ledger-tls-ca", "", "CA certificate (PEM) of the ledger node; enables TLS")
	fs.StringVar(&l.NodeKey, "ledger-key", "", "trust a single ledger node whose checkpoint key is this (64 hex digits)")
	fs.StringVar(&l.Genesis, "ledger-genesis", "", "trust a replicated ledger: a head counts when more than 2/3 of this genesis file's validators signed it")
	fs.StringVar(&l.ChainID, "chain-id", "", "the ledger's chain id (default: the genesis file's, or the node's own, checked against its signed checkpoints)")
	fs.StringVar(&l.PinCommitment, "pin-commitment", "", "refuse the model unless it is registered with this commitment (64 hex digits)")
	fs.StringVar(&l.PinServer, "pin-server-key", "", "refuse the model unless it is served under this server key (64 hex digits)")
	fs.BoolVar(&l.RequireCeremony, "require-ceremony", false, "refuse a model whose verifying key was not derived by the ledger from a sealed ceremony (its owner's own setup is INSECURE)")
	fs.StringSliceVar(&l.Contributors, "trust-contributor", nil, "refuse the model unless one of these ed25519 keys (hex; 'self' = this client's ledger identity) contributed to the ledger's phase 1 and to the model's phase 2 (implies --require-ceremony)")
}

// reader checks the flags (a mistake is a usage error), connects to the
// ledger and pins what they say to trust.
func (l *ledgerFlags) reader(ctx context.Context) (*trust.Reader, *query.Client, error) {
	if err := l.Check(); err != nil {
		return nil, nil, usageError("%v", err)
	}
	return l.Dial(ctx)
}

// logger for the verifiable commands.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func newVerifyRequestCmd(g *globalOptions) *cobra.Command {
	var (
		lf      ledgerFlags
		keyHex  string
		receipt int64
	)
	cmd := &cobra.Command{
		Use:   "verify-request",
		Short: "As a third party, check which committed model answered a request",
		Long: `Fetch a request's registration, receipt, challenge reveal, proof and
verdict from a ledger node and verify them here, each against a log head
vouched for by what you pin (--ledger-key: a single node's checkpoint key;
--ledger-genesis: more than 2/3 of a replicated chain's validators): the
model's verifying key is for its registered spec's circuit, the receipt is
signed by the registered server key and countersigned by the client, the
reveal opens the client's commitment, the Groth16 proof verifies for the
revealed challenges of every request it covers, and the verdict is the
client's.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if (receipt < 0) == (keyHex == "") {
			return nil, usageError("give either --receipt N (log index of the receipt) or --request-key HEX")
		}
		reader, lc, err := lf.reader(cmd.Context())
		if err != nil {
			return nil, err
		}
		defer lc.Close()
		var key []byte
		if receipt >= 0 {
			if key, err = protocol.RequestKeyAt(cmd.Context(), reader, uint64(receipt)); err != nil {
				return nil, err
			}
		} else if key, err = hex.DecodeString(keyHex); err != nil || len(key) != 32 {
			return nil, usageError("--request-key: want 64 hex digits")
		}
		pin, err := lf.Pin(g.store().SelfKey)
		if err != nil {
			return nil, err
		}
		v, err := federated.AuditRequest(cmd.Context(), reader, key, pin)
		if v == nil {
			return nil, err
		}
		if !v.Audit.OK() {
			return v, fmt.Errorf("request %x does not verify", v.Audit.RequestKey)
		}
		return v, err
	})
	lf.register(cmd.Flags())
	cmd.Flags().Int64Var(&receipt, "receipt", -1, "log index of the request's receipt")
	cmd.Flags().StringVar(&keyHex, "request-key", "", "the request's ledger key (64 hex digits, as veil infer --verify prints it)")
	return cmd
}
