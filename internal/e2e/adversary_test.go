package e2e

// One test per finding of issue 11: each plays the lie and shows it
// caught (or shows the capability gone).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
)

// rewriteModelInfo is an inference-server interceptor that changes what
// GetModel announces.
func rewriteModelInfo(f func(*inferencev1.ModelInfo)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if mi, ok := resp.(*inferencev1.ModelInfo); ok && err == nil {
			c := proto.Clone(mi).(*inferencev1.ModelInfo)
			f(c)
			return c, nil
		}
		return resp, err
	}
}

// scaledDown is m with its scores divided by 2^6 (the last layer's weight
// fraction raised by 6, so the same integers stand for 64 times smaller
// weights and biases) plus 0.4 on class j: under the server's announced
// output fraction (the true one + 6) it stays within half a unit of the
// committed model on every block, yet it answers class j almost always.
func scaledDown(m *model.Model, j int) *model.Model {
	c := *m
	c.Layers = append([]model.Layer(nil), m.Layers...)
	li := len(c.Layers) - 1
	last := &c.Layers[li]
	last.WeightFrac += 6
	last.B = append([]int64(nil), last.B...)
	last.BiasBits = 48
	accFrac := c.Frac(li-1) + last.WeightFrac
	last.B[j] += int64(math.Round(0.4 * math.Ldexp(1, accFrac)))
	return &c
}

// Finding 1: the server sets the scale the client compares in. Now the
// client reads the output fraction and the tolerance from the registered
// spec and compares in integer units: the scaled-down model is caught.
func TestServerAnnouncedScaleIsIgnored(t *testing.T) {
	w := getWorld(t)
	frac := w.m.OutputFrac()
	e := newEnv(t, options{
		inference: rewriteModelInfo(func(mi *inferencev1.ModelInfo) { mi.OutputFrac = int32(frac + 6) }),
		evaluator: func(w *world) (server.Evaluator, error) {
			net, err := compileWith(scaledDown(w.m, 3))
			return netEvaluator{net}, err
		},
	})
	if got := e.client.Classifier.Info.GetOutputFrac(); got != int32(frac+6) {
		t.Fatalf("the interceptor did not change the announcement (%d)", got)
	}
	req, out := e.round(t, 0)
	// The attack is real: under the announced scale every challenge score
	// is within 0.5 of the proven one.
	announced := 0.0
	for i, b := range req.Positions {
		y, _ := w.m.Forward(req.Challenges[i][:])
		for r := range y {
			announced = math.Max(announced, math.Abs(req.Blocks[b][r]-math.Ldexp(float64(y[r]), -(frac+6))))
		}
	}
	t.Logf("under the announced scale the largest difference is %.3f (the old tolerance was 0.5); under the registered one %.0f units of %d", announced, out.MaxDiff, out.Tolerance)
	if announced > 0.5 {
		t.Fatalf("the attack model is not within the old tolerance (%.3f): the test does not play the attack", announced)
	}
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER {
		t.Fatalf("the scaled-down server was accepted (%s): %s", out.Reason, out.Detail)
	}
}

// permissive accepts every registration: a ledger node that does not check
// keys against specs (a compromised or buggy node).
type permissive struct{ ledger.ProofVerifier }

func (p permissive) CheckModel(spec, vk []byte, batch int) (ledger.ModelSpec, error) {
	return ledger.ModelSpec{Classes: 10}, nil
}

// Finding 2: a verifying key that decodes is not enough. A registration
// whose key is for another circuit is refused by every honest node
// (ledger/zkverify tests), and the client refuses it itself when a node let
// it through.
func TestClientRefusesAKeyOfAnotherCircuit(t *testing.T) {
	w := getWorld(t)
	e := newEnv(t, options{skipConnect: true})
	// Register a second model whose key is the tiny model's: another
	// circuit, so another circuit id than its spec's.
	other := *w.m
	other.Name = "other-model"
	tinyVK, err := tinyKey()
	if err != nil {
		t.Fatal(err)
	}
	c := w.prover.Commitment()
	reg, err := ledger.Signer{ChainID: chainID, Key: e.serverKey}.RegisterModel(&ledgerv1.RegisterModel{
		ModelId: other.Name, Commitment: c[:], VerifyingKey: tinyVK, OutputsPerChallenge: 10, Spec: w.spec.Canonical(), ProofBatch: 3,
	}, e.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.node.Submit(context.Background(), reg)
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_SPEC_MISMATCH {
		t.Fatalf("an honest node accepted a key of another circuit: %v", err)
	}
	// Through a node that does not check, the client still refuses.
	lax := openLaxLedger(t)
	if _, err := lax.Submit(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	r := &trust.Reader{API: lax, Anchor: trust.Anchor{ChainID: chainID, NodeKey: lax.PublicKey()}}
	head, err := r.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = protocol.ReadRegistration(context.Background(), r, head, other.Name, protocol.Pin{})
	if err == nil || !strings.Contains(err.Error(), "circuit") {
		t.Fatalf("the client accepted a key of another circuit: %v", err)
	}
	t.Log(err)
}

// lyingRequests is a ledger-node interceptor that rewrites GetRequest
// answers about one request key.
func lyingRequests(key *[]byte, f func(*ledgerv1.RequestRecord)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if gr, ok := req.(*ledgerv1.GetRequestRequest); ok && *key != nil && bytes.Equal(gr.GetRequestKey(), *key) {
			rec, _ := resp.(*ledgerv1.RequestRecord)
			if rec == nil {
				rec = &ledgerv1.RequestRecord{}
			} else {
				rec = proto.Clone(rec).(*ledgerv1.RequestRecord)
			}
			f(rec)
			return rec, nil
		}
		return resp, err
	}
}

// Finding 3: the client compared against outputs the node reported. A
// server that runs another model on every block, with a node that reports
// the other model's outputs as proven and points at a valid proof of
// another request, is rejected: the client reads the proof from the
// verified log, finds it does not cover this request and no other does.
func TestLyingLedgerNodeCannotVouchForACheatingServer(t *testing.T) {
	w := getWorld(t)
	bad := testmodels.Perturbed(w.m, 25)
	var victim []byte
	var proofOfAnother uint64
	var badOutputs []int64
	e := newEnv(t, options{
		evaluator: func(w *world) (server.Evaluator, error) {
			net, err := compileWith(bad)
			return netEvaluator{net}, err
		},
		ledgerLies: lyingRequests(&victim, func(rec *ledgerv1.RequestRecord) {
			rec.Status, rec.ProofIndex, rec.Outputs = ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN, proofOfAnother, badOutputs
		}),
	})
	ctx := context.Background()
	// An earlier request, proven honestly (the prover proves the
	// committed model whatever the evaluator did).
	first, _ := e.round(t, 0)
	rec, err := e.node.Request(ctx, first.Key[:])
	if err != nil || rec.GetProofIndex() == 0 {
		t.Fatalf("first request not proven: %v %v", rec, err)
	}
	proofOfAnother = rec.GetProofIndex()
	req, err := e.client.Classify(ctx, w.test.Images[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range req.Challenges {
		y, _ := bad.Forward(c[:])
		badOutputs = append(badOutputs, y...)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	victim = req.Key[:] // from now on the node lies about this request
	out, err := e.client.Settle(ctx, req, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The proof it points at does not list this request, the verified log
	// holds none that does: the request is unproven, and once the deadline
	// has passed the client records NO_PROOF (which the ledger accepts:
	// no proof was recorded).
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF {
		t.Fatalf("the lying node's word was taken (%v %s): %s", out.Accept, out.Reason, out.Detail)
	}
	t.Log(out.Detail)
}

// Finding 3, the log itself: a node that serves an altered entry (here: a
// proof with other outputs) cannot give it an inclusion proof against the
// pinned head.
func TestLyingLedgerNodeCannotAlterEntries(t *testing.T) {
	alter := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if e, ok := resp.(*ledgerv1.Entry); ok && err == nil {
			if tx, perr := ledger.ParseTx(chainID, e.GetTx()); perr == nil && tx.Body.GetChallengeProof() != nil {
				c := proto.Clone(e).(*ledgerv1.Entry)
				c.Tx = append([]byte(nil), c.Tx...)
				c.Tx[len(c.Tx)-1] ^= 1
				return c, nil
			}
		}
		return resp, err
	}
	e := newEnv(t, options{ledgerLies: alter})
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dep.Prover.ProveOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// The client cannot read a proof it can verify, so it accepts nothing
	// and records nothing (the node denies service; it cannot make the
	// client accept, nor earn the server a verdict it did not deserve).
	out, err := e.client.Settle(ctx, req, 15*time.Second)
	if err == nil || !strings.Contains(err.Error(), "not in the verified log") || out.Accept || out.VerdictIndex != 0 {
		t.Fatalf("an altered log entry: %+v, %v", out, err)
	}
	t.Log(err)
	// And a client that pins another node key trusts nothing this node says.
	_, other, _ := ed25519.GenerateKey(nil)
	r := &trust.Reader{API: e.reader.API, Anchor: trust.Anchor{ChainID: chainID, NodeKey: other.Public().(ed25519.PublicKey)}}
	if _, err := r.Head(context.Background()); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("a head signed by another key was trusted: %v", err)
	}
}

// Finding 4: the client accepted whatever CKKS parameters the server
// announced. It now computes the security level itself and refuses
// anything below 128 bits, and refuses a slot layout that is not the one
// the registered architecture needs.
func TestWeakParametersAndForeignLayoutsAreRefused(t *testing.T) {
	cases := []struct {
		name string
		lit  he.ParametersLiteral
	}{
		{"N=2^10, log QP 180", he.ParametersLiteral{LogN: 10, LogQ: []int{60, 60}, LogP: []int{60}, LogInputScale: 31, BlockSize: 1024}},
		{"N=2^12, log QP 180", he.ParametersLiteral{LogN: 12, LogQ: []int{60, 60}, LogP: []int{60}, LogInputScale: 31, BlockSize: 1024}},
		{"N=2^13, log QP 600", he.ParametersLiteral{LogN: 13, LogQ: []int{60, 60}, LogP: []int{60, 60, 60, 60, 60, 60, 60, 60}, LogInputScale: 31, BlockSize: 1024}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lit, err := c.lit.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, options{skipConnect: true, inference: rewriteModelInfo(func(mi *inferencev1.ModelInfo) { mi.Ckks.Literal = lit })})
			_, err = protocol.Connect(context.Background(), protocol.ConnectOptions{Conn: e.conn, Ledger: e.reader, ModelID: e.w.m.Name, DataDir: t.TempDir(), Key: e.serverKey, Pool: e.w.pool})
			if err == nil || !strings.Contains(err.Error(), "not 128-bit secure") {
				t.Fatalf("weak parameters accepted: %v", err)
			}
			t.Log(err)
		})
	}
	t.Run("layout of another architecture", func(t *testing.T) {
		e := newEnv(t, options{skipConnect: true, inference: rewriteModelInfo(func(mi *inferencev1.ModelInfo) { mi.Layout.InputOffset += 64 })})
		_, err := protocol.Connect(context.Background(), protocol.ConnectOptions{Conn: e.conn, Ledger: e.reader, ModelID: e.w.m.Name, DataDir: t.TempDir(), Key: e.serverKey, Pool: e.w.pool})
		if err == nil || !strings.Contains(err.Error(), "registered model needs") {
			t.Fatalf("a foreign layout was accepted: %v", err)
		}
		t.Log(err)
	})
}

// Finding 6: one client could stall proofs for everyone. A request with
// more challenges than one proof covers is refused before evaluation (and
// by the ledger's receipt rule); a request with fewer challenges than the
// batch is proven at once, padded; one client flooding requests is refused
// beyond its share of the proving capacity while another client's request
// is still admitted and proven.
func TestUnprovableRequestsAndFloodsDoNotStallOthers(t *testing.T) {
	e := newEnv(t, options{blocks: 2, maxPerClient: 3})
	ctx := context.Background()
	// A verifiable request with k = 8 (7 challenges > batch 3), correctly
	// signed: refused for its size alone.
	cl := e.client.Classifier
	_, clientKey := keyPair(t)
	_, err := cl.ClassifyWith(ctx, make([][]uint8, 8), func(in []byte) (*inferencev1.VerifiableRequest, error) {
		kd, id := cl.KeysDigest(), sha256.Sum256(in)
		commitment := make([]byte, 32)
		d := ledger.ClientRequestDigest(chainID, e.w.m.Name, "k8", kd[:], id[:], commitment, 8, 0)
		return &inferencev1.VerifiableRequest{RequestId: "k8", ChallengeCommitment: commitment, NumBlocks: 8, ChainId: chainID,
			ClientKey: clientKey.Public().(ed25519.PublicKey), ClientSignature: ed25519.Sign(clientKey, d[:])}, nil
	})
	if status.Code(errors.Unwrap(err)) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 4 blocks") {
		t.Fatalf("a request that cannot be proven was not refused for its size: %v", err)
	}
	t.Log(err)
	// k = 2: one challenge, proven in a padded batch.
	req, out := e.round(t, 0)
	if !out.Accept || len(req.Challenges) != 1 {
		t.Fatalf("a one-challenge request: accept=%v (%s), %d challenges", out.Accept, out.Detail, len(req.Challenges))
	}
	// A flooding client gets its share (3 outstanding) and no more.
	flood := e.connect(t, t.TempDir())
	var revealed []*protocol.Request
	for i := 0; ; i++ {
		r, err := flood.Classify(ctx, e.w.test.Images[20+i])
		if err != nil {
			if status.Code(errors.Unwrap(err)) != codes.ResourceExhausted || i != 3 {
				t.Fatalf("flood request %d: %v (want RESOURCE_EXHAUSTED after 3)", i, err)
			}
			t.Log(err)
			break
		}
		if _, _, err := flood.Reveal(ctx, r); err != nil {
			t.Fatal(err)
		}
		revealed = append(revealed, r)
	}
	// Another client is still served, and the prover proves everything
	// revealed (one request's challenges never wait for a full batch).
	other := e.connect(t, t.TempDir())
	r, err := other.Classify(ctx, e.w.test.Images[40])
	if err != nil {
		t.Fatalf("another client refused during a flood: %v", err)
	}
	if _, _, err := other.Reveal(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n, err := e.dep.Prover.ProveOnce(ctx); err != nil || n != 2 {
		t.Fatalf("proving 4 one-challenge requests: %d proofs, %v (want 2: batches of 3 and 1)", n, err)
	}
	if o, err := other.Settle(ctx, r, 30*time.Second); err != nil || !o.Accept {
		t.Fatalf("the other client's request: %v %v", o, err)
	}
	for _, rr := range revealed {
		if o, err := flood.Settle(ctx, rr, 30*time.Second); err != nil || !o.Accept {
			t.Fatalf("a flood request: %v %v", o, err)
		}
	}
	// Once proven, the flooding client's share is free again.
	if _, err := flood.Classify(ctx, e.w.test.Images[50]); err != nil {
		t.Fatalf("after its requests were proven: %v", err)
	}
}

// Finding 7: a receipt the ledger would reject was accepted by the client.
// The client now runs the ledger's stateless rules on it and checks every
// field against the exchange.
func TestReceiptsTheLedgerWouldRejectAreRefused(t *testing.T) {
	cases := map[string]func(*ledgerv1.InferenceReceipt, *ledger.Signer){
		"another chain":         func(_ *ledgerv1.InferenceReceipt, s *ledger.Signer) { s.ChainID = "another-chain" },
		"another key bundle":    func(rc *ledgerv1.InferenceReceipt, _ *ledger.Signer) { rc.KeysDigest = bytes.Repeat([]byte{7}, 32) },
		"another block count":   func(rc *ledgerv1.InferenceReceipt, _ *ledger.Signer) { rc.NumBlocks++ },
		"another client key":    func(rc *ledgerv1.InferenceReceipt, _ *ledger.Signer) { rc.ClientKey = bytes.Repeat([]byte{1}, 32) },
		"another output":        func(rc *ledgerv1.InferenceReceipt, _ *ledger.Signer) { rc.OutputDigest = bytes.Repeat([]byte{2}, 32) },
		"signed by another key": func(_ *ledgerv1.InferenceReceipt, s *ledger.Signer) { _, s.Key, _ = ed25519.GenerateKey(nil) },
	}
	for name, mangle := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, options{recorder: func(h *protocol.Recorder) server.Recorder { return mangling{h, mangle, false} }})
			_, err := e.client.Classify(context.Background(), e.w.test.Images[0])
			if !errors.Is(err, protocol.ErrBadReceipt) {
				t.Fatalf("receipt with %s accepted: %v", name, err)
			}
			t.Log(err)
		})
	}
}

// Finding 8: verdicts leak decrypted values and came before any proof.
// They are reason codes now (the proto has no free text), the ledger takes
// them only after the proof or its deadline (ledger tests), and a client's
// CKKS key serves a bounded number of requests: then fresh keys and a new
// session.
func TestClientKeysServeABoundedNumberOfRequests(t *testing.T) {
	e := newEnv(t, options{maxPerKey: 2})
	seen := map[[32]byte]bool{}
	sessions := map[string]bool{}
	for i := 0; i < 3; i++ {
		req, out := e.round(t, i)
		if !out.Accept {
			t.Fatalf("request %d rejected: %s", i, out.Detail)
		}
		tx, err := ledger.ParseTx(chainID, req.ReceiptTx)
		if err != nil {
			t.Fatal(err)
		}
		seen[[32]byte(tx.Body.GetInferenceReceipt().GetKeysDigest())] = true
		sessions[e.client.Classifier.SessionID()] = true
	}
	if len(seen) != 2 || len(sessions) != 2 {
		t.Fatalf("3 requests with at most 2 per key used %d key bundles and %d sessions", len(seen), len(sessions))
	}
}

// Finding 10: registrations could be hijacked. The server key must
// co-sign (ledger tests), and Deploy refuses a registration of its model
// id by another owner or for another server key.
func TestDeployRefusesAHijackedRegistration(t *testing.T) {
	w := getWorld(t)
	e := newEnv(t, options{skipConnect: true})
	_, thief, _ := ed25519.GenerateKey(nil)
	_, err := protocol.Deploy(context.Background(), protocol.DeployOptions{Model: w.m, Salt: w.salt, Keys: w.pk, Ledger: e.node, ChainID: chainID, Owner: thief, Server: thief})
	if err == nil || !strings.Contains(err.Error(), "another owner or for another server key") {
		t.Fatalf("deploy over another owner's registration: %v", err)
	}
	t.Log(err)
}

// Finding 11: sessions were bearer tokens published on the ledger. The
// receipt names the key bundle by its digest; the session id appears
// nowhere on the ledger, so nobody can close or use a session read from it.
func TestSessionIDsAreNeverPublished(t *testing.T) {
	e := newEnv(t, options{})
	req, _ := e.round(t, 0)
	sid := e.client.Classifier.SessionID()
	_, size, _, _ := e.node.Head()
	for i := uint64(0); i < size; i++ {
		raw, err := e.node.Tx(i)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(sid)) {
			t.Fatalf("log entry %d contains the session id", i)
		}
	}
	d := e.client.Classifier.KeysDigest()
	tx, _ := ledger.ParseTx(chainID, req.ReceiptTx)
	if !bytes.Equal(tx.Body.GetInferenceReceipt().GetKeysDigest(), d[:]) {
		t.Fatal("the receipt does not name the key bundle the client uploaded")
	}
	// Guessing is hopeless and answered like any unknown session.
	if err := e.conn.CloseSession(context.Background(), strings.Repeat("0", 32)); status.Code(errors.Unwrap(err)) != codes.NotFound {
		t.Fatalf("closing a guessed session: %v", err)
	}
}

// Finding 12: submission must be idempotent: the client's copy of a
// receipt the server already recorded is not an error.
func TestSubmittingTheSameReceiptTwiceIsHarmless(t *testing.T) {
	e := newEnv(t, options{recorder: func(h *protocol.Recorder) server.Recorder { h.Sync = true; return h }})
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.node.Submit(ctx, req.ReceiptTx)
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_DUPLICATE_TX || res.GetIndex() != req.Result.Response.GetReceiptIndex() {
		t.Fatalf("second submission: %v, index %d (first %d)", err, res.GetIndex(), req.Result.Response.GetReceiptIndex())
	}
	receipt, _, err := e.client.Reveal(ctx, req)
	if err != nil || receipt != req.Result.Response.GetReceiptIndex() {
		t.Fatalf("reveal after a double submission: %v (receipt %d)", err, receipt)
	}
}

// A node that hides a proof (reports the request revealed but unproven)
// cannot make an honest client record NO_PROOF against an honest server:
// the ledger refuses NO_PROOF on a proven request, and the client then
// finds the proof in the verified log itself.
func TestLyingLedgerNodeCannotHideAProof(t *testing.T) {
	var victim []byte
	e := newEnv(t, options{ledgerLies: lyingRequests(&victim, func(rec *ledgerv1.RequestRecord) {
		rec.Status, rec.ProofIndex, rec.Outputs = ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED, 0, nil
	})})
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n, err := e.dep.Prover.ProveOnce(ctx); err != nil || n != 1 {
		t.Fatalf("prover: %d %v", n, err)
	}
	victim = req.Key[:]
	out, err := e.client.Settle(ctx, req, 10*time.Second)
	if err != nil || !out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_MATCH {
		t.Fatalf("with the proof hidden by the node: %v %v", out, err)
	}
	t.Logf("proof found at entry %d despite the node: %s", out.ProofIndex, out.Detail)
	// A third party auditing through the same node finds proof and verdict.
	a, err := protocol.AuditRequest(ctx, e.reader, req.Key[:], protocol.Pin{})
	if err != nil || !a.OK() || !a.Accepted {
		t.Fatalf("audit through the lying node: %+v %v", a, err)
	}
}

// A client whose wait ends before the proof deadline records nothing: a
// slow ledger or a short patience is never a NO_PROOF verdict.
func TestImpatientClientRecordsNoVerdict(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Settle(ctx, req, 50*time.Millisecond); err == nil {
		t.Fatal("Settle returned a verdict before the proof deadline")
	}
	if rec, err := e.node.Request(ctx, req.Key[:]); err != nil || rec.GetHasVerdict() {
		t.Fatalf("a verdict was recorded: %v %v", rec, err)
	}
	// The server proves late but in time; the verdict is then MATCH.
	if _, err := e.dep.Prover.ProveOnce(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.Settle(ctx, req, 10*time.Second)
	if err != nil || !out.Accept {
		t.Fatalf("after the proof: %v %v", out, err)
	}
}
