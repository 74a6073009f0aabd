// Package demo is `veil demo`'s composition root: it starts a verifier
// ledger (one embedded node with the market: fees, offers, escrows,
// disputes), runs the committed model's trusted setup on it (three
// contributors to both phases, each contribution verified by the node; or,
// for quick runs, a cached ceremony of one), three inference servers for
// the model (an honest provider, one that runs another model on one
// block, one that never proves), and a client with a funded account,
// wires them over gRPC on loopback, and runs the verifiable-inference
// protocol: a few MNIST test images with the honest provider (paid),
// requests to the cheating one until a dispute proves its fraud
// (slashed), one request to the idle one (refunded and slashed at the
// deadline); then a third party audits one request from the ledger alone,
// and the balances are shown before and after.
package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
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
	// Ceremony runs the trusted setup on the demo's ledger instead of using
	// Keys' ceremony of one (ceremony.go): three contributors, each
	// contribution verified by the node. Salt then gives the model's salt.
	Ceremony bool
	Salt     func(ctx context.Context, m *model.File) (zk.Salt, error)
	Log      *slog.Logger
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
	Escrow       string  `json:"escrow"`
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
	// Market is the market's part: the cheating and the idle provider,
	// balances before and after.
	Market *MarketReport `json:"market"`
	// Ceremony is the trusted setup run on the ledger (unless
	// --ceremony=false).
	Ceremony *CeremonyReport `json:"ceremony,omitempty"`
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
	// this process), cutting a block every 100 ms so that deadlines in
	// blocks measure time; its own gRPC port, not the inference servers'.
	// The chain has the market: fees, offers, escrows and disputes, and
	// genesis balances for the client and the three providers.
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	_, clientKey, _ := ed25519.GenerateKey(nil)
	var provKeys [3]ed25519.PrivateKey
	for i := range provKeys {
		_, provKeys[i], _ = ed25519.GenerateKey(nil)
	}
	chain := ledger.DefaultChainID
	params := marketParams(clientKey.Public().(ed25519.PublicKey), pubOf(provKeys[0]), pubOf(provKeys[1]), pubOf(provKeys[2]))
	if o.Ceremony {
		if err := ceremonyParams(&params, m, pubOf(nodeKey), pubOf(provKeys[0]), pubOf(clientKey)); err != nil {
			return nil, err
		}
	}
	node, err := embedded.Open(embedded.Config{
		Path: filepath.Join(o.Dir, "ledger.db"), ChainID: chain, Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), SigningKey: nodeKey,
		Params: params, BlockInterval: 100 * time.Millisecond,
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

	// The model owner commits and makes (or loads) the keys; three
	// providers register the committed model under their own ids, each with
	// an offer and stake bonded from its balance.
	tSetup := time.Now()
	var salt zk.Salt
	var pk *zk.ProvingKey
	ceremonyID := ""
	if o.Ceremony {
		if salt, err = o.Salt(ctx, o.Model); err != nil {
			return nil, err
		}
		cr, err := runCeremony(ctx, node, chain, m, nodeKey, provKeys[0], clientKey, say)
		if err != nil {
			return nil, err
		}
		pk, ceremonyID = cr.Key, cr.Record.CeremonyId
		rep.Ceremony = ceremonyReport(cr, time.Since(tSetup))
	} else {
		say("keys: a ceremony of one on this machine (INSECURE: whoever ran it could forge proofs; plain `veil demo` runs a 3-party ceremony on the ledger)\n")
		if salt, pk, err = o.Keys(ctx, o.Model); err != nil {
			return nil, err
		}
	}
	cheatEval, err := newCheatingEvaluator(m)
	if err != nil {
		return nil, err
	}
	var provs []*provider
	for i, po := range []providerOptions{
		{name: "honest", modelID: m.Name, prove: true},
		{name: "cheap", modelID: m.Name + "-cheap", evaluator: cheatEval, prove: true},
		{name: "idle", modelID: m.Name + "-idle"},
	} {
		p, err := startProvider(ctx, node, chain, m, salt, pk, ceremonyID, provKeys[i], po, o.Log)
		if err != nil {
			return nil, err
		}
		defer p.stop()
		provs = append(provs, p)
	}
	honest, cheap, idle := provs[0], provs[1], provs[2]
	dep := honest.dep
	rep.SetupS = time.Since(tSetup).Seconds()
	rep.Commitment = dep.Commitment.String()
	rep.Tolerance, rep.OutputFrac = dep.Spec.Tolerance, dep.Spec.OutputFrac()
	coll := max(params.Market.MinCollateral, params.Market.CollateralMultiple*demoPrice)
	rep.Market = &MarketReport{Price: demoPrice, Stake: demoStake, Collateral: coll}
	say("committed: %s… registered by 3 providers with its spec and Groth16 verifying key (%.1f s)\n", rep.Commitment[:16], rep.SetupS)
	say("market: offers at %s VEIL per image with %s VEIL staked; each request reserves %s VEIL of collateral; fees 1 unit/byte + a base per type\n",
		veil(demoPrice), veil(demoStake), veil(coll))
	say("providers: honest (%s) · cheap (%s: another model on block %d) · idle (%s: never proves)\n", honest.ModelID, cheap.ModelID, cheatBlock, idle.ModelID)
	rep.Server = honest.addr

	// The client reads the ledger over gRPC and pins the node's key.
	lc, err := query.Dial(ledgerLis.Addr().String())
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	reader := &trust.Reader{API: lc, Anchor: trust.Anchor{ChainID: chain, NodeKey: nodeKey.Public().(ed25519.PublicKey)}}
	accounts := []struct {
		who   string
		key   ed25519.PublicKey
		model string
	}{{"client", pubOf(clientKey), ""}, {"honest provider", pubOf(provKeys[0]), honest.ModelID}, {"cheap provider", pubOf(provKeys[1]), cheap.ModelID}, {"idle provider", pubOf(provKeys[2]), idle.ModelID}}
	stake := func(model string) uint64 {
		if model == "" {
			return 0
		}
		o, _ := node.Offer(ctx, model)
		return o.GetBonded()
	}
	for _, a := range accounts {
		b, err := protocol.BalanceOf(ctx, node, a.key)
		if err != nil {
			return nil, err
		}
		rep.Market.Balances = append(rep.Market.Balances, Balance{Who: a.who, Before: b, StakeBefore: stake(a.model)})
	}

	// The idle provider first: its deadline runs while the others work.
	ci, idleConn, err := connectTo(ctx, idle, reader, o.Dir, clientKey, pool, o.Blocks, 0)
	if err != nil {
		return nil, err
	}
	defer idleConn.Close()
	img, _, _ := test.At(200)
	idleReq, err := ci.Classify(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("idle provider: %w", err)
	}
	idleReceipt, idleReveal, err := ci.Reveal(ctx, idleReq)
	if err != nil {
		return nil, fmt.Errorf("idle provider: %w", err)
	}

	c, conn, err := connectTo(ctx, honest, reader, o.Dir, clientKey, pool, o.Blocks, 0)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cl := c.Classifier
	rep.KeyGenMS, rep.KeyMB, rep.UploadMS = ms(cl.KeyGen), float64(cl.KeyBytes)/1e6, ms(cl.Upload)
	say("honest provider %s: client keys made in %.0f ms, %.1f MB of evaluation keys uploaded in %.0f ms; ledger node %s (key %s…) pinned by the client\n\n",
		honest.addr, rep.KeyGenMS, rep.KeyMB, rep.UploadMS, ledgerLis.Addr(), rep.NodeKey[:16])
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
		if e := escrowOf(ctx, node, req.Key[:]); e != nil {
			r.Escrow = e.GetStatus().String()
		}
		rep.Images = append(rep.Images, r)
		if o.Progress != nil {
			printImage(o.Progress, r)
		}
	}

	// The cheap provider, with one request per session: a dispute reveals
	// the session's seed, and so only that request's images.
	say("\ncheap provider %s (another model on block %d; one request per session, so a dispute reveals one request's images):\n", cheap.addr, cheatBlock)
	cc, cheapConn, err := connectTo(ctx, cheap, reader, o.Dir, clientKey, pool, o.Blocks, 1)
	if err != nil {
		return nil, err
	}
	defer cheapConn.Close()
	if rep.Market.Cheat, err = cheat(ctx, cc, node, test, say); err != nil {
		return nil, err
	}

	// The idle provider's deadline.
	say("\nidle provider %s: request receipted (#%d) and revealed (#%d), never proven:\n", idle.addr, idleReceipt, idleReveal)
	if rep.Market.Missed, err = waitMissed(ctx, ci, idleReq, idleReceipt, idleReveal); err != nil {
		return nil, err
	}
	mi := rep.Market.Missed
	say("  no proof by the deadline (height %d): at height %d every node refunded the client and slashed %s VEIL of stake, %s VEIL of it to the client\n",
		mi.Deadline, mi.SettleHeight, veil(mi.Slashed), veil(mi.ToClient))

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
	for i, a := range accounts {
		if rep.Market.Balances[i].After, err = protocol.BalanceOf(ctx, node, a.key); err != nil {
			return nil, err
		}
		rep.Market.Balances[i].StakeAfter = stake(a.model)
	}
	sup, err := node.Supply(ctx)
	if err != nil {
		return nil, err
	}
	rep.Market.Pool, rep.Market.Burned = sup.GetPool(), sup.GetBurned()
	_, auditErr := node.AuditSupply()
	rep.Market.SupplyOK = auditErr == nil
	if o.Progress != nil {
		PrintBalances(o.Progress, rep.Market)
	}
	rep.TotalS = time.Since(start).Seconds()
	return rep, nil
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

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
		proof, fmt.Sprintf("%s (max |decrypted-proven| %.0f of %d units), %s", r.Verdict, r.MaxDiff, r.Tolerance, paidText(r.Escrow)))
}

func paidText(status string) string {
	if status == ledgerv1.EscrowStatus_ESCROW_STATUS_PAID.String() {
		return "paid"
	}
	return status
}

// WriteText ends the demo's output (the table went to Options.Progress):
// the third-party audit, the ledger's head and the time.
func (r *Report) WriteText(w io.Writer) error {
	if len(r.Images) > 0 {
		fmt.Fprintf(w, "\nthird-party audit of request %s… from verified ledger entries (what `veil verify-request` does): %d checks, %s\n",
			r.Images[0].RequestKey[:min(12, len(r.Images[0].RequestKey))], r.AuditChecks, map[bool]string{true: "all passed", false: "FAILED"}[r.AuditOK])
	}
	for _, f := range r.AuditFailed {
		fmt.Fprintf(w, "  FAILED %s\n", f)
	}
	fmt.Fprintf(w, "ledger: %d entries, Merkle root %s…, checkpoints signed by node key %s…\n", r.LedgerSize, r.LedgerRoot[:min(16, len(r.LedgerRoot))], r.NodeKey[:min(16, len(r.NodeKey))])
	_, err := fmt.Fprintf(w, "done in %.1f s\n", r.TotalS)
	return err
}

// Err says what in the report is not what the demo must show: a rejected
// image, a failed audit, or a market that did not pay, catch the cheat,
// slash the idle provider and conserve the supply.
func (r *Report) Err() error {
	for _, im := range r.Images {
		if im.Verdict != "accept" {
			return fmt.Errorf("image %d was rejected: %s", im.Index, strings.TrimSpace(im.Detail))
		}
	}
	if !r.AuditOK {
		return errors.New("the audit failed")
	}
	if m := r.Market; m == nil || len(m.Cheat) == 0 || !m.Cheat[len(m.Cheat)-1].Caught || m.Missed == nil || m.Missed.Slashed == 0 || !m.SupplyOK {
		return fmt.Errorf("the market did not do what it should: %+v", r.Market)
	}
	return nil
}
