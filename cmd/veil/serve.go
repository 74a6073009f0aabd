package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
)

func newServeCmd(g *globalOptions) *cobra.Command {
	var (
		o                     protocol.ServeOptions
		maxSessionMB          int
		persist, logJSON, dbg bool
		verifiable            bool
		so                    protocol.ServiceOptions
		price, stake          string
		funds                 []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the encrypted-inference gRPC server",
		Long: `Serve models over gRPC: clients upload their CKKS evaluation keys once per
session and send encrypted images. The server also speaks the standard gRPC
health protocol and server reflection (grpcurl works), and exposes
Prometheus metrics on --metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Config.MaxSessionBytes, o.Config.Logger, o.Log = maxSessionMB<<20, server.NewLogger(os.Stderr, dbg, logJSON), cmd.ErrOrStderr()
			if persist {
				dir, err := g.store().Ensure("server", "sessions")
				if err != nil {
					return err
				}
				o.Config.SessionDir = dir
			}
			if verifiable {
				var err error
				if so.Fund, err = parseFunds(funds); err != nil {
					return err
				}
				if price != "" {
					if so.Offer, err = protocol.ParseOffer(o.Addr, price, stake); err != nil {
						return usageError("--price and --stake: %v", err)
					}
				}
				if err := g.store().Serving(&so); err != nil {
					return err
				}
				so.Progress = cmd.ErrOrStderr()
				o.Service = &so
			}
			return protocol.Serve(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Addr, "addr", "127.0.0.1:7443", "gRPC listen address")
	fl.StringVar(&o.Serve.MetricsAddr, "metrics", "127.0.0.1:9464", "HTTP address for /metrics (empty: off)")
	fl.StringVar(&o.Serve.TLSCert, "tls-cert", "", "TLS certificate (PEM); with --tls-key enables TLS")
	fl.StringVar(&o.Serve.TLSKey, "tls-key", "", "TLS private key (PEM)")
	fl.StringArrayVar(&o.ModelPaths, "model", nil, "model file to serve (repeatable; default: the committed default model)")
	fl.IntVar(&o.Config.Workers, "workers", 0, "concurrent evaluations (default: CPUs / 2, at least 1)")
	fl.IntVar(&o.Config.MaxSessions, "max-sessions", 64, "most sessions held")
	fl.IntVar(&maxSessionMB, "max-session-mb", 2048, "most memory held by session keys, in MiB")
	fl.DurationVar(&o.Config.IdleTimeout, "idle-timeout", 30*time.Minute, "sessions unused for this long expire")
	fl.DurationVar(&o.Config.QueueTimeout, "queue-timeout", 30*time.Second, "longest wait for an evaluation worker")
	fl.BoolVar(&persist, "persist-sessions", false, "keep session keys under the data directory so they survive a restart")
	fl.BoolVar(&logJSON, "log-json", false, "JSON logs")
	fl.BoolVar(&dbg, "debug", false, "debug logs (every RPC)")
	fl.BoolVar(&verifiable, "verifiable", false, "commit and register the models on a verifier ledger, record receipts and prove revealed challenges (makes Groth16 keys the first time)")
	fl.StringVar(&so.LedgerAddr, "ledger", "", "with --verifiable: gRPC address of a ledger node (default: an embedded node under the data directory, for local experiments)")
	fl.StringVar(&so.Ceremony, "ceremony", "", "with --verifiable: use the key the ledger derived from this sealed phase-2 ceremony (rebuilt from its transcript, cached) and name it in the registration")
	fl.StringVar(&so.LedgerListen, "ledger-listen", "127.0.0.1:7070", "with --verifiable and no --ledger: where the embedded ledger node serves its gRPC API")
	fl.StringVar(&so.ChainID, "chain-id", "", "with --verifiable: the ledger's chain id (default: the node's; "+ledger.DefaultChainID+" for an embedded node)")
	fl.StringVar(&price, "price", "", "with --verifiable: offer the models at this price per image in VEIL (docs/market.md); the server key pays the stake and fees")
	fl.StringVar(&stake, "stake", "10", "with --price: the stake to bond per model, in VEIL")
	fl.StringArrayVar(&funds, "fund", nil, "with --verifiable and no --ledger: a genesis balance KEY=VEIL of the embedded ledger (repeatable: fund clients)")
	return cmd
}
