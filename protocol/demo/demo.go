// Package demo is `veil demo`'s composition root: it starts a verifier
// ledger (one embedded node), an inference server for the committed
// default model, and a client, wires them over gRPC on loopback, and runs
// the verifiable-inference protocol on a few MNIST test images, then has a
// third party audit one request from the ledger alone.
package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
)

// Options configure Run.
type Options struct {
	Model  *model.File
	Images []int // MNIST test image indices
	Dir    string
	Blocks int
	// Keys returns the model's salt and Groth16 keys (made the first time).
	Keys func(ctx context.Context, m *model.File) (zk.Salt, *zk.ProvingKey, error)
	Log  *slog.Logger
	// Progress, when set, receives a line per event as it happens.
	Progress io.Writer
}

// Image is one classified image.
type Image struct {
	Index        int     `json:"index"`
	Label        int     `json:"label"`
	Class        int     `json:"class"`
	Guaranteed   bool    `json:"class_guaranteed"`
	LatencyMS    float64 `json:"latency_ms"`
	ProtocolMS   float64 `json:"protocol_overhead_ms"`
	RequestKey   string  `json:"request_key"`
	ReceiptIndex uint64  `json:"receipt_index"`
	RevealIndex  uint64  `json:"reveal_index"`
	ProofIndex   uint64  `json:"proof_index"`
	ProofWaitS   float64 `json:"proof_wait_s"`
	Verified     bool    `json:"proof_verified_by_ledger"`
	Verdict      string  `json:"verdict"`
	Reason       string  `json:"reason"`
	Detail       string  `json:"detail"`
	MaxDiff      float64 `json:"max_abs_diff_units"`
	Tolerance    int64   `json:"tolerance_units"`
}

// Report is what Run did.
type Report struct {
	Model       string   `json:"model"`
	Arch        string   `json:"architecture"`
	Commitment  string   `json:"commitment"`
	Blocks      int      `json:"blocks"`
	Tolerance   int64    `json:"tolerance_units"`
	OutputFrac  int      `json:"output_frac"`
	Images      []Image  `json:"images"`
	AuditOK     bool     `json:"audit_ok"`
	AuditChecks int      `json:"audit_checks"`
	AuditFailed []string `json:"audit_failed,omitempty"`
	LedgerSize  uint64   `json:"ledger_entries"`
	LedgerRoot  string   `json:"ledger_root"`
	NodeKey     string   `json:"node_key"`
	Server      string   `json:"server"`
	KeyGenMS    float64  `json:"client_keygen_ms"`
	KeyMB       float64  `json:"evaluation_keys_mb"`
	UploadMS    float64  `json:"upload_ms"`
	SetupS      float64  `json:"setup_s"`
	TotalS      float64  `json:"total_s"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Run runs the demo.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format, a...)
		}
	}
	mnistDir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	test, err := dataset.LoadTest(mnistDir)
	if err != nil {
		return nil, err
	}
	pool, err := dataset.LoadTrain(mnistDir)
	if err != nil {
		return nil, err
	}
	for _, i := range o.Images {
		if i < 0 || i >= test.Len() {
			return nil, fmt.Errorf("image %d is not a test image index", i)
		}
	}
	m := o.Model.Model
	rep := &Report{Model: m.Name, Arch: model.ArchitectureOf(m).String(), Blocks: o.Blocks}
	say("model %s (%s), CKKS N=8192 (128-bit), k=%d blocks per request: 1 real image + %d hidden challenges\n", m.Name, rep.Arch, o.Blocks, o.Blocks-1)

	// The verifier ledger: one embedded node, run by a verifier (here in
	// this process), making a block at least every 200 ms so that deadlines
	// advance; its own gRPC port, not the inference server's.
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	chain := ledger.DefaultChainID
	node, err := embedded.Open(embedded.Config{
		Path: filepath.Join(o.Dir, "ledger.db"), ChainID: chain, Verifier: zkverify.New(), SigningKey: nodeKey,
		Params: ledger.Params{ProofDeadlineBlocks: 150}, BlockInterval: 200 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	rep.NodeKey = hex.EncodeToString(nodeKey.Public().(ed25519.PublicKey))
	ledgerLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lctx, stopLedger := context.WithCancel(ctx)
	defer stopLedger()
	go func() { _ = query.Serve(lctx, node, ledgerLis, nil) }()

	// The model owner commits, makes (or loads) the keys and registers.
	tSetup := time.Now()
	salt, pk, err := o.Keys(ctx, o.Model)
	if err != nil {
		return nil, err
	}
	_, ownerKey, _ := ed25519.GenerateKey(nil)
	_, serverKey, _ := ed25519.GenerateKey(nil)
	dep, err := protocol.Deploy(ctx, protocol.DeployOptions{Model: m, Salt: salt, Keys: pk, Ledger: node, ChainID: chain, Owner: ownerKey, Server: serverKey, Log: o.Log})
	if err != nil {
		return nil, err
	}
	rep.SetupS = time.Since(tSetup).Seconds()
	rep.Commitment = dep.Commitment.String()
	rep.Tolerance, rep.OutputFrac = dep.Spec.Tolerance, dep.Spec.OutputFrac()
	say("committed: %s… registered on the ledger with its spec and Groth16 verifying key, co-signed by the server key (%.1f s)\n", rep.Commitment[:16], rep.SetupS)

	srv, err := server.New(server.Config{Models: []*model.Model{m}, Commitments: map[string][]byte{m.Name: dep.Commitment[:]}, Recorder: dep.Recorder, Logger: o.Log})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() { served <- srv.Serve(sctx, lis, server.Options{Ready: func(string, string) { close(ready) }}) }()
	<-ready
	proving := make(chan struct{})
	go func() { defer close(proving); _ = dep.Prover.Run(sctx, 50*time.Millisecond) }()
	rep.Server = lis.Addr().String()

	// The client, over gRPC to both; it pins the ledger node's key.
	conn, err := client.Dial(lis.Addr().String(), client.Options{})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	lc, err := query.Dial(ledgerLis.Addr().String())
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	reader := &trust.Reader{API: lc, Anchor: trust.Anchor{ChainID: chain, NodeKey: nodeKey.Public().(ed25519.PublicKey)}}
	_, clientKey, _ := ed25519.GenerateKey(nil)
	c, err := protocol.Connect(ctx, protocol.ConnectOptions{Conn: conn, Ledger: reader, ModelID: m.Name, DataDir: o.Dir, Key: clientKey, Pool: pool, Blocks: o.Blocks,
		Pin: protocol.Pin{Commitment: &dep.Commitment, ServerKey: serverKey.Public().(ed25519.PublicKey)}})
	if err != nil {
		return nil, err
	}
	c.Poll = 50 * time.Millisecond
	cl := c.Classifier
	rep.KeyGenMS, rep.KeyMB, rep.UploadMS = ms(cl.KeyGen), float64(cl.KeyBytes)/1e6, ms(cl.Upload)
	say("server %s: client keys made in %.0f ms, %.1f MB of evaluation keys uploaded in %.0f ms; ledger node %s (key %s…) pinned by the client\n\n",
		rep.Server, rep.KeyGenMS, rep.KeyMB, rep.UploadMS, ledgerLis.Addr(), rep.NodeKey[:16])
	if o.Progress != nil {
		PrintHeader(o.Progress)
	}

	for _, i := range o.Images {
		img, label, _ := test.At(i)
		req, err := c.Classify(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		r := Image{Index: i, Label: int(label), Class: req.Class, Guaranteed: req.Guaranteed, RequestKey: hex.EncodeToString(req.Key[:]), ProtocolMS: req.ProtocolMS,
			LatencyMS: req.Result.EncryptMS + req.Result.RoundTripMS + req.Result.DecryptMS}
		if r.ReceiptIndex, r.RevealIndex, err = c.Reveal(ctx, req); err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		tProof := time.Now()
		out, err := c.Settle(ctx, req, 2*time.Minute)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		r.ProofWaitS = time.Since(tProof).Seconds()
		r.ProofIndex, r.Verified, r.MaxDiff, r.Tolerance, r.Reason, r.Detail = out.ProofIndex, out.ProofIndex > 0, out.MaxDiff, out.Tolerance, out.Reason.String(), out.Detail
		r.Verdict = map[bool]string{true: "accept", false: "reject"}[out.Accept]
		rep.Images = append(rep.Images, r)
		if o.Progress != nil {
			printImage(o.Progress, r)
		}
	}
	// A third party checks one request from the ledger alone.
	if len(rep.Images) > 0 {
		key, _ := hex.DecodeString(rep.Images[0].RequestKey)
		a, err := protocol.AuditRequest(ctx, reader, key, protocol.Pin{})
		if err != nil {
			return nil, err
		}
		rep.AuditOK, rep.AuditChecks = a.OK(), len(a.Checks)
		for _, ch := range a.Checks {
			if !ch.OK {
				rep.AuditFailed = append(rep.AuditFailed, ch.What+": "+ch.Info)
			}
		}
		if a.Head != nil {
			rep.LedgerSize, rep.LedgerRoot = a.Head.GetSize(), hex.EncodeToString(a.Head.GetRootHash())
		}
	}
	stop()
	<-served
	<-proving
	dep.Recorder.Wait()
	rep.TotalS = time.Since(start).Seconds()
	return rep, nil
}

// Row is the format of one line of the demo's table.
const Row = "%-6s %-6s %-12s %-9s %-8s %-38s %s\n"

// PrintHeader prints the table's header.
func PrintHeader(w io.Writer) {
	fmt.Fprintf(w, Row, "image", "label", "class", "latency", "receipt", "proof (time until verified)", "verdict")
}

func printImage(w io.Writer, r Image) {
	proof := "none"
	if r.Verified {
		proof = fmt.Sprintf("#%d verified by the ledger (%.1f s)", r.ProofIndex, r.ProofWaitS)
	}
	class := fmt.Sprint(r.Class)
	if r.Guaranteed {
		class += " (sure)"
	}
	fmt.Fprintf(w, Row, fmt.Sprint(r.Index), fmt.Sprint(r.Label), class, fmt.Sprintf("%.0f ms", r.LatencyMS), fmt.Sprintf("#%d", r.ReceiptIndex),
		proof, fmt.Sprintf("%s (max |decrypted-proven| %.0f of %d units)", r.Verdict, r.MaxDiff, r.Tolerance))
}
