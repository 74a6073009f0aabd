package e2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
)

// The verifiable path for a general network (784-6-relu2-5-relu2-10,
// random weights): served under the parameters chosen for it, challenges
// proven by its circuit, the honest answer accepted; a server that
// evaluates another polynomial is rejected.
func TestGeneralNetworkVerifiable(t *testing.T) {
	e := newEnv(t, options{general: true})
	for _, idx := range []int{0, 1} {
		req, out := e.round(t, idx)
		plain, _ := e.w.m.Forward(e.w.test.Images[idx][:])
		if req.Class != model.Class(plain) {
			t.Errorf("image %d: private class %d, plaintext class %d", idx, req.Class, model.Class(plain))
		}
		if !out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_MATCH {
			t.Fatalf("image %d: honest server rejected: %s", idx, out.Detail)
		}
		t.Logf("image %d: max |decrypted-proven| %.1f of %d units", idx, out.MaxDiff, out.Tolerance)
	}
	// Another polynomial (the last activation's x term tripled), under the
	// same parameters: its challenge scores differ from the proven ones.
	cheat := newEnv(t, options{general: true, evaluator: func(w *world) (server.Evaluator, error) {
		other := *w.m
		other.Layers = append([]model.Layer(nil), w.m.Layers...)
		l := &other.Layers[3]
		l.Coeffs = append([]int64(nil), l.Coeffs...)
		l.Coeffs[1] *= 3
		var probe [][]uint8
		for i := range 64 {
			probe = append(probe, w.pool.Images[i][:])
		}
		honest, err := he.CompileGeneral(w.m, he.GeneralOptions{Probe: probe})
		if err != nil {
			return nil, err
		}
		lit := honest.Parameters().Literal()
		net, err := he.CompileGeneral(&other, he.GeneralOptions{Probe: probe, Literal: &lit})
		return generalEvaluator{net}, err
	}})
	_, out := cheat.round(t, 0)
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER {
		t.Fatalf("another polynomial: accept=%v (%s): %s", out.Accept, out.Reason, out.Detail)
	}
}

// generalEvaluator evaluates a fixed general network whatever the model.
type generalEvaluator struct{ net *he.GeneralNetwork }

func (e generalEvaluator) Evaluate(ctx context.Context, _ string, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error) {
	return e.net.Evaluate(ctx, in, keys)
}

func TestHonestServerIsAccepted(t *testing.T) {
	e := newEnv(t, options{})
	for _, idx := range []int{0, 1, 2} {
		req, out := e.round(t, idx)
		plain, _ := e.w.m.Forward(e.w.test.Images[idx][:])
		if req.Class != model.Class(plain) {
			t.Errorf("image %d: private class %d, plaintext class %d", idx, req.Class, model.Class(plain))
		}
		if !out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_MATCH {
			t.Fatalf("image %d: honest server rejected: %s", idx, out.Detail)
		}
		a, err := protocol.AuditRequest(context.Background(), e.reader, req.Key[:], protocol.Pin{})
		if err != nil {
			t.Fatal(err)
		}
		if !a.OK() || !a.HasVerdict || !a.Accepted {
			for _, c := range a.Checks {
				t.Logf("%v %s: %s", c.OK, c.What, c.Info)
			}
			t.Fatalf("image %d: the audit fails", idx)
		}
		t.Logf("image %d: class %d (guaranteed %v), max |decrypted-proven| %.1f of %d units, protocol overhead %.2f ms of %.1f ms", idx, req.Class, req.Guaranteed,
			out.MaxDiff, out.Tolerance, req.ProtocolMS, req.Result.EncryptMS+req.Result.RoundTripMS+req.Result.DecryptMS)
	}
}

func TestServerWithAnotherModelOnEveryBlockIsRejected(t *testing.T) {
	e := newEnv(t, options{evaluator: func(w *world) (server.Evaluator, error) {
		net, err := compileWith(testmodels.Perturbed(w.m, 25))
		return netEvaluator{net}, err
	}})
	_, out := e.round(t, 0)
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER {
		t.Fatalf("want a rejection for differing challenge scores, got accept=%v (%s): %s", out.Accept, out.Reason, out.Detail)
	}
	t.Log(out.Detail)
}

// perRequest evaluates with the network its pick function names for each
// request: a server that changes what it computes from one request to the
// next.
type perRequest struct{ pick func() *he.Network }

func (p perRequest) Evaluate(ctx context.Context, _ string, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error) {
	return p.pick().Evaluate(ctx, in, keys)
}

// A server that runs another model on one block, chosen at random, is
// caught exactly when that block holds a challenge: with probability
// (k-1)/k = 3/4. Over 80 requests with fixed seeds the detection rate must
// lie within 4 standard deviations of 3/4.
func TestBlockSelectiveServerIsCaughtAtTheExpectedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("80 encrypted requests")
	}
	w := getWorld(t)
	hctx, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	bad := testmodels.Perturbed(w.m, 25)
	nets := make([]*he.Network, 4)
	for j := range nets {
		ms := make([]*model.Model, 8)
		for b := range ms {
			ms[b] = w.m
		}
		ms[j] = bad
		if nets[j], err = hctx.CompilePerBlock(ms, he.DefaultEvaluationSettings); err != nil {
			t.Fatal(err)
		}
	}
	serverRand := rand.New(rand.NewPCG(11, 12))
	var mu sync.Mutex
	cheated := -1
	e := newEnv(t, options{clientRandom: rand.New(rand.NewPCG(21, 22)), maxPerKey: 1000, maxPerClient: 1000, evaluator: func(*world) (server.Evaluator, error) {
		return perRequest{func() *he.Network { mu.Lock(); defer mu.Unlock(); return nets[cheated] }}, nil
	}})
	const trials = 80
	detected, realCheated := 0, 0
	for i := 0; i < trials; i++ {
		mu.Lock()
		cheated = serverRand.IntN(4)
		mu.Unlock()
		req, err := e.client.Classify(context.Background(), w.test.Images[i])
		if err != nil {
			t.Fatal(err)
		}
		rows := make([][]int64, len(req.Challenges))
		for k, c := range req.Challenges {
			rows[k], _ = w.m.Forward(c[:])
		}
		out := e.client.Compare(req, rows)
		if !out.Accept {
			detected++
		}
		if req.RealBlock == cheated {
			realCheated++
			if !out.Accept {
				t.Fatalf("trial %d: a server cheating only on the real block was flagged", i)
			}
		} else if out.Accept {
			t.Fatalf("trial %d: cheating on challenge block %d went unnoticed", i, cheated)
		}
	}
	rate := float64(detected) / trials
	sd := 0.0484 // sqrt(0.75*0.25/80)
	t.Logf("detected %d of %d block-selective requests (%.3f; expected 0.75 ± %.3f); %d cheated only on the real block", detected, trials, rate, sd, realCheated)
	if rate < 0.75-4*sd || rate > 0.75+4*sd {
		t.Fatalf("detection rate %.3f outside 0.75 ± 4σ", rate)
	}
}

// replayFirstOutput is a server interceptor that answers every request
// after the first with the first one's output ciphertext.
func replayFirstOutput(mu *sync.Mutex) grpc.UnaryServerInterceptor {
	var first []byte
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if r, ok := resp.(*inferencev1.InferResponse); ok && err == nil {
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = r.Ciphertext
			} else {
				r.Ciphertext = first
			}
		}
		return resp, err
	}
}

func TestReplayedOutputIsRejected(t *testing.T) {
	// The server answers the second request with the first one's output
	// ciphertext; its receipt is honest about what it computed.
	e := newEnv(t, options{inference: replayFirstOutput(&sync.Mutex{})})
	e.round(t, 0)
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[1])
	if !errors.Is(err, protocol.ErrBadReceipt) {
		t.Fatalf("a replayed output was accepted by the client: %v", err)
	}
	// The client never reveals; once the deadline has passed it records a
	// rejection (a reason code).
	if _, err := e.client.Reject(ctx, req, ledgerv1.VerdictReason_VERDICT_REASON_BAD_RECEIPT); err != nil {
		t.Fatal(err)
	}
	rec, err := e.node.Request(ctx, req.Key[:])
	if err != nil || !rec.GetHasVerdict() || rec.GetVerdictAccept() || rec.GetVerdictReason() != ledgerv1.VerdictReason_VERDICT_REASON_BAD_RECEIPT {
		t.Fatalf("no recorded rejection: %v %v", rec, err)
	}
}

// mangling checks requests like the honest recorder but signs (and, with
// submit, records) receipts it has changed first: a server whose receipts
// do not describe the exchange.
type mangling struct {
	*protocol.Recorder
	mangle func(*ledgerv1.InferenceReceipt, *ledger.Signer)
	submit bool
}

func (m mangling) Record(ctx context.Context, ev server.InferEvent) (*server.Receipt, error) {
	v := ev.Verifiable
	in, out := sha256.Sum256(ev.Input), sha256.Sum256(ev.Output)
	body := &ledgerv1.InferenceReceipt{
		ModelId: ev.ModelID, RequestId: v.GetRequestId(), KeysDigest: ev.KeysDigest[:],
		InputDigest: in[:], OutputDigest: out[:], ChallengeCommitment: v.GetChallengeCommitment(),
		NumBlocks: v.GetNumBlocks(), ClientKey: v.GetClientKey(), ClientSignature: v.GetClientSignature(),
	}
	signer := m.Signer
	m.mangle(body, &signer)
	raw, err := signer.Receipt(body)
	if err != nil {
		return nil, err
	}
	if m.submit {
		if _, err := m.Ledger.Submit(ctx, raw); err != nil {
			return nil, err
		}
	}
	return &server.Receipt{Tx: raw}, nil
}

func TestReplayWithMatchingReceiptIsRejected(t *testing.T) {
	// Same replay, but the server also signs and records a receipt for the
	// replayed ciphertext: the client's challenge check catches it.
	var mu sync.Mutex
	var firstDigest []byte
	e := newEnv(t, options{inference: replayFirstOutput(&mu), recorder: func(h *protocol.Recorder) server.Recorder {
		return mangling{h, func(rc *ledgerv1.InferenceReceipt, _ *ledger.Signer) {
			mu.Lock()
			defer mu.Unlock()
			if firstDigest == nil {
				firstDigest = rc.OutputDigest
			} else {
				rc.OutputDigest = firstDigest
			}
		}, true}
	}})
	e.round(t, 0)
	_, out := e.round(t, 1)
	if out.Accept {
		t.Fatalf("replayed output accepted: %s", out.Detail)
	}
	t.Log(out.Detail)
}

// lyingProver alters the outputs of a valid proof: a server that claims
// outputs the model does not produce (it cannot prove them).
type lyingProver struct{ honest protocol.ChallengeProver }

func (l lyingProver) Prove(ctx context.Context, images []pixels.Image) (*zk.Proof, error) {
	p, err := l.honest.Prove(ctx, images)
	if err != nil {
		return nil, err
	}
	p.Outputs[0][0] += 4096
	return p, nil
}

func TestFalseClaimsAreRejectedByTheLedger(t *testing.T) {
	// Every ledger node rejects the altered proof; the client, seeing no
	// proof by the deadline, rejects.
	e := newEnv(t, options{prover: func(h protocol.ChallengeProver) protocol.ChallengeProver { return lyingProver{h} }})
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err = e.dep.Prover.ProveOnce(ctx)
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_PROOF_INVALID {
		t.Fatalf("the ledger accepted or mis-rejected a false claim: %v", err)
	}
	out, err := e.client.Settle(ctx, req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF {
		t.Fatalf("verdict %v (%s): %s", out.Accept, out.Reason, out.Detail)
	}
	// And the prover refuses to prove false outputs in the first place.
	claimed := make([][]int64, 3)
	for i := range claimed {
		claimed[i] = make([]int64, 10)
	}
	if _, err := e.w.prover.ProveClaim(ctx, req.Challenges, claimed); err == nil {
		t.Fatal("proved outputs the model does not produce")
	}
	if !strings.Contains(rj.Reason, "pairing") && !strings.Contains(rj.Reason, "mismatch") {
		t.Logf("rejection reason: %s", rj.Reason)
	}
}
