package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
)

func newServeCmd(g *globalOptions) *cobra.Command {
	var (
		addr, metricsAddr     string
		tlsCert, tlsKey       string
		modelPaths            []string
		workers, maxSessions  int
		maxSessionMB          int
		idle, queue           time.Duration
		persist, logJSON, dbg bool
		verifiable            bool
		ledgerAddr, chainID   string
		ledgerListen          string
		ceremonyID            string
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
			var models []*model.Model
			if len(modelPaths) == 0 {
				f, err := model.Default()
				if err != nil {
					return err
				}
				models = append(models, f.Model)
			}
			for _, p := range modelPaths {
				f, err := model.Load(p)
				if err != nil {
					return err
				}
				models = append(models, f.Model)
			}
			level := slog.LevelInfo
			if dbg {
				level = slog.LevelDebug
			}
			var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			if logJSON {
				h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
			}
			cfg := server.Config{
				Models: models, Workers: workers, QueueTimeout: queue, MaxSessions: maxSessions,
				MaxSessionBytes: maxSessionMB << 20, IdleTimeout: idle, Logger: slog.New(h),
			}
			// General networks choose their parameters from MNIST
			// training images, loaded only if such a model is served.
			cfg.ProbeSource = func() ([][]uint8, error) { return dataset.TrainingSample(200) }
			if persist {
				dir, err := g.ensureDataDir("server", "sessions")
				if err != nil {
					return err
				}
				cfg.SessionDir = dir
			}
			if verifiable {
				sdir, err := g.ensureDataDir("server")
				if err != nil {
					return err
				}
				serverKey, err := protocol.LoadOrCreateIdentity(filepath.Join(sdir, "server.key"))
				if err != nil {
					return err
				}
				so := protocol.ServiceOptions{
					Models: models, Keys: g.modelKeys, LedgerAddr: ledgerAddr, LedgerDir: filepath.Join(g.dataDir, "ledger"), LedgerListen: ledgerListen,
					ChainID: chainID, ServerKey: serverKey, Log: cfg.Logger, Progress: cmd.ErrOrStderr(),
					Ceremony: ceremonyID, Salt: g.modelSalt, KeyDir: g.dataDir,
				}
				if so.Fund, err = parseFunds(funds); err != nil {
					return err
				}
				if price != "" {
					p, err1 := parseAmount(price)
					st, err2 := parseAmount(stake)
					if err1 != nil || err2 != nil {
						return usageError("--price and --stake: %v", errors.Join(err1, err2))
					}
					so.Offer = &protocol.OfferOptions{Endpoint: addr, Price: p, Stake: st, UnbondingDelay: ledger.MarketDefaults().MinUnbondingDelayBlocks}
				}
				svc, err := protocol.StartService(cmd.Context(), so)
				if err != nil {
					return err
				}
				defer svc.Stop()
				cfg.Recorder, cfg.Commitments = svc.Recorder, svc.Commitments
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", addr, err)
			}
			return srv.Serve(cmd.Context(), lis, server.Options{
				TLSCert: tlsCert, TLSKey: tlsKey, MetricsAddr: metricsAddr,
				Ready: func(ga, ha string) {
					fmt.Fprintf(cmd.ErrOrStderr(), "veil: serving gRPC on %s", ga)
					if ha != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), ", metrics on http://%s/metrics", ha)
					}
					fmt.Fprintln(cmd.ErrOrStderr())
				},
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:7443", "gRPC listen address")
	fl.StringVar(&metricsAddr, "metrics", "127.0.0.1:9464", "HTTP address for /metrics (empty: off)")
	fl.StringVar(&tlsCert, "tls-cert", "", "TLS certificate (PEM); with --tls-key enables TLS")
	fl.StringVar(&tlsKey, "tls-key", "", "TLS private key (PEM)")
	fl.StringArrayVar(&modelPaths, "model", nil, "model file to serve (repeatable; default: the committed default model)")
	fl.IntVar(&workers, "workers", 0, "concurrent evaluations (default: CPUs / 2, at least 1)")
	fl.IntVar(&maxSessions, "max-sessions", 64, "most sessions held")
	fl.IntVar(&maxSessionMB, "max-session-mb", 2048, "most memory held by session keys, in MiB")
	fl.DurationVar(&idle, "idle-timeout", 30*time.Minute, "sessions unused for this long expire")
	fl.DurationVar(&queue, "queue-timeout", 30*time.Second, "longest wait for an evaluation worker")
	fl.BoolVar(&persist, "persist-sessions", false, "keep session keys under the data directory so they survive a restart")
	fl.BoolVar(&logJSON, "log-json", false, "JSON logs")
	fl.BoolVar(&dbg, "debug", false, "debug logs (every RPC)")
	fl.BoolVar(&verifiable, "verifiable", false, "commit and register the models on a verifier ledger, record receipts and prove revealed challenges (makes Groth16 keys the first time)")
	fl.StringVar(&ledgerAddr, "ledger", "", "with --verifiable: gRPC address of a ledger node (default: an embedded node under the data directory, for local experiments)")
	fl.StringVar(&ceremonyID, "ceremony", "", "with --verifiable: use the key the ledger derived from this sealed phase-2 ceremony (rebuilt from its transcript, cached) and name it in the registration")
	fl.StringVar(&ledgerListen, "ledger-listen", "127.0.0.1:7070", "with --verifiable and no --ledger: where the embedded ledger node serves its gRPC API")
	fl.StringVar(&chainID, "chain-id", "", "with --verifiable: the ledger's chain id (default: the node's; "+ledger.DefaultChainID+" for an embedded node)")
	fl.StringVar(&price, "price", "", "with --verifiable: offer the models at this price per image in VEIL (docs/market.md); the server key pays the stake and fees")
	fl.StringVar(&stake, "stake", "10", "with --price: the stake to bond per model, in VEIL")
	fl.StringArrayVar(&funds, "fund", nil, "with --verifiable and no --ledger: a genesis balance KEY=VEIL of the embedded ledger (repeatable: fund clients)")
	return cmd
}
