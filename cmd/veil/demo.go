package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/server"
)

type demoImage struct {
	Index        int     `json:"index"`
	Label        int     `json:"label"`
	Class        int     `json:"class"`
	LatencyMS    float64 `json:"latency_ms"`
	ProtocolMS   float64 `json:"protocol_overhead_ms"`
	RequestID    string  `json:"request_id"`
	ReceiptIndex uint64  `json:"receipt_index"`
	RevealIndex  uint64  `json:"reveal_index"`
	ProofIndex   uint64  `json:"proof_index"`
	ProofWaitS   float64 `json:"proof_wait_s"`
	Verified     bool    `json:"proof_verified_by_ledger"`
	Verdict      string  `json:"verdict"`
	Reason       string  `json:"reason"`
	MaxDiff      float64 `json:"max_abs_diff"`
}

type demoReport struct {
	Model       string      `json:"model"`
	Commitment  string      `json:"commitment"`
	Blocks      int         `json:"blocks"`
	Images      []demoImage `json:"images"`
	AuditOK     bool        `json:"audit_ok"`
	AuditChecks int         `json:"audit_checks"`
	LedgerSize  uint64      `json:"ledger_entries"`
	LedgerRoot  string      `json:"ledger_root"`
	NodeKey     string      `json:"node_key"`
	SetupS      float64     `json:"setup_s"`
	TotalS      float64     `json:"total_s"`
}

func newDemoCmd(g *globalOptions) *cobra.Command {
	var (
		list    string
		dir     string
		asJSON  bool
		k       int
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Private, verifiable classification end to end, in one process",
		Long: `Start an inference server and a single-node verifier ledger in this process,
register the committed default model (making its Groth16 keys with a
ceremony of one the first time, cached under the data directory), then
classify a few MNIST test images privately: each image is encrypted in one
of k blocks beside k-1 hidden challenge images, the server records a
signed receipt, the client reveals the challenges, the server proves the
committed model's outputs on them, every ledger node verifies the proof,
and the client compares the proven outputs with what it decrypted and
records its verdict.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			idx, err := parseIndices(list)
			if err != nil {
				return usageError("--images: %v", err)
			}
			return runDemo(cmd.Context(), g, cmd.OutOrStdout(), idx, dir, k, asJSON, verbose)
		},
	}
	cmd.Flags().StringVar(&list, "images", "0,1,2", "MNIST test image indices")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the ledger and the client's keys (default: a temporary one, removed)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&k, "blocks", client.DefaultBlocks, "blocks per request: 1 real image and k-1 hidden challenges (the proving keys are for k=4)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "server and prover logs on stderr")
	return cmd
}

func runDemo(ctx context.Context, g *globalOptions, w io.Writer, idx []int, dir string, k int, asJSON, verbose bool) error {
	start := time.Now()
	if k != client.DefaultBlocks {
		return usageError("--blocks: the demo's proving keys prove %d challenges per request, so k must be %d", proofBatch, proofBatch+1)
	}
	say := func(format string, a ...any) {
		if !asJSON {
			fmt.Fprintf(w, format, a...)
		}
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "veil-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	logLevel := slog.LevelWarn
	if verbose {
		logLevel = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	mf, err := model.Default()
	if err != nil {
		return err
	}
	m := mf.Model
	mnistDir, err := dataset.FindMNISTDir()
	if err != nil {
		return err
	}
	test, err := dataset.LoadTest(mnistDir)
	if err != nil {
		return err
	}
	pool, err := dataset.LoadTrain(mnistDir)
	if err != nil {
		return err
	}
	for _, i := range idx {
		if i < 0 || i >= test.Len() {
			return usageError("--images: %d is not a test image index", i)
		}
	}
	rep := demoReport{Model: m.Name, Blocks: k}

	// The verifier ledger: one embedded node.
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	node, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "ledger.db"), ChainID: ledger.DefaultChainID, Verifier: zkverify.New(), SigningKey: nodeKey})
	if err != nil {
		return err
	}
	defer node.Close()
	rep.NodeKey = hex.EncodeToString(nodeKey.Public().(ed25519.PublicKey))

	// The model owner commits, makes (or loads) the keys and registers.
	say("model %s (%s), CKKS N=8192 (128-bit), k=%d blocks per request: 1 real image + %d hidden challenges\n", m.Name, model.ArchitectureOf(m).String(), k, k-1)
	tSetup := time.Now()
	_, serverKey, _ := ed25519.GenerateKey(nil)
	dep, err := g.deploy(ctx, mf, node, ledger.DefaultChainID, serverKey, log)
	if err != nil {
		return err
	}
	rep.SetupS = time.Since(tSetup).Seconds()
	rep.Commitment = dep.commitment.String()
	say("committed: %s… registered on the ledger with its Groth16 verifying key (%.1f s)\n", rep.Commitment[:16], rep.SetupS)

	// The inference server, with the ledger's API on the same port.
	srv, err := server.New(server.Config{Models: []*model.Model{m}, Commitments: map[string][]byte{m.Name: dep.commitment[:]}, Recorder: dep.recorder, Logger: log})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		served <- srv.Serve(sctx, lis, server.Options{
			Register: func(gs *grpc.Server) { ledgerv1.RegisterLedgerServiceServer(gs, &query.GRPCServer{API: node}) },
			Ready:    func(string, string) { close(ready) },
		})
	}()
	<-ready
	go func() { _ = dep.proofs.Run(sctx, 50*time.Millisecond) }()

	// The client, talking to both over gRPC.
	conn, err := client.Dial(lis.Addr().String(), client.Options{})
	if err != nil {
		return err
	}
	defer conn.Close()
	ledgerConn, err := query.Dial(lis.Addr().String())
	if err != nil {
		return err
	}
	defer ledgerConn.Close()
	cl, err := client.NewClassifier(ctx, conn, m.Name, dir)
	if err != nil {
		return err
	}
	say("server %s: client keys made in %.0f ms, %.1f MB of evaluation keys uploaded in %.0f ms\n\n",
		lis.Addr(), stats.Milliseconds(cl.KeyGen), float64(cl.KeyBytes)/1e6, stats.Milliseconds(cl.Upload))
	_, clientKey, _ := ed25519.GenerateKey(nil)
	v := &client.Verifier{Classifier: cl, Ledger: ledgerConn, ChainID: ledger.DefaultChainID, Key: clientKey, Pool: pool, Blocks: k, Poll: 50 * time.Millisecond}

	row := "%-6s %-6s %-6s %-9s %-8s %-38s %s\n"
	say(row, "image", "label", "class", "latency", "receipt", "proof (time until verified)", "verdict")
	for _, i := range idx {
		img, label, _ := test.At(i)
		req, err := v.Classify(ctx, img)
		if err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		r := demoImage{Index: i, Label: int(label), Class: req.Class, RequestID: req.ID, ProtocolMS: req.ProtocolMS,
			LatencyMS: req.Result.EncryptMS + req.Result.RoundTripMS + req.Result.DecryptMS}
		if r.ReceiptIndex, r.RevealIndex, err = v.Reveal(ctx, req); err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		tProof := time.Now()
		out, err := v.Settle(ctx, req, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("image %d: %w", i, err)
		}
		r.ProofWaitS = time.Since(tProof).Seconds()
		r.ProofIndex, r.Verified, r.MaxDiff, r.Reason = out.ProofIndex, out.ProofIndex > 0, out.MaxDiff, out.Reason
		r.Verdict = "reject"
		if out.Accept {
			r.Verdict = "accept"
		}
		rep.Images = append(rep.Images, r)
		if !asJSON {
			proof := "none"
			if r.Verified {
				proof = fmt.Sprintf("#%d verified by the ledger (%.1f s)", r.ProofIndex, r.ProofWaitS)
			}
			say(row, fmt.Sprint(i), fmt.Sprint(label), fmt.Sprint(r.Class), fmt.Sprintf("%.0f ms", r.LatencyMS), fmt.Sprintf("#%d", r.ReceiptIndex),
				proof, fmt.Sprintf("%s (max |decrypted-proven| %.3f)", r.Verdict, r.MaxDiff))
		}
	}
	// A third party checks one request from the ledger alone.
	if len(rep.Images) > 0 {
		a, err := client.AuditRequest(ctx, ledgerConn, rep.Images[0].RequestID, nodeKey.Public().(ed25519.PublicKey))
		if err != nil {
			return err
		}
		rep.AuditOK, rep.AuditChecks = a.OK(), len(a.Checks)
		cp := a.Checkpoint
		say("\nthird-party audit of request %s… (what `veil verify-request` does): %d checks, %s\n", rep.Images[0].RequestID[:12], len(a.Checks), map[bool]string{true: "all passed", false: "FAILED"}[a.OK()])
		for _, c := range a.Checks {
			if !c.OK {
				say("  FAILED %s: %s\n", c.What, c.Info)
			}
		}
		if cp != nil {
			rep.LedgerSize, rep.LedgerRoot = cp.GetSize(), hex.EncodeToString(cp.GetRootHash())
		}
	}
	rep.TotalS = time.Since(start).Seconds()
	stop()
	<-served
	dep.recorder.Wait()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	say("ledger: %d entries, Merkle root %s…, checkpoints signed by node key %s…\n", rep.LedgerSize, rep.LedgerRoot[:16], rep.NodeKey[:16])
	say("done in %.1f s\n", rep.TotalS)
	for _, r := range rep.Images {
		if r.Verdict != "accept" {
			return fmt.Errorf("image %d was rejected: %s", r.Index, strings.TrimSpace(r.Reason))
		}
	}
	if !rep.AuditOK {
		return fmt.Errorf("the audit failed")
	}
	return nil
}
