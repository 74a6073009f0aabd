package e2e

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

const chainID = "veil-e2e"

// world is the shared, expensive part: the model, its Groth16 keys (a real
// ceremony of one at batch 3) and MNIST.
type world struct {
	m      *model.Model
	salt   zk.Salt
	pk     *zk.ProvingKey
	prover *zk.Prover
	pool   *dataset.Set
	test   *dataset.Set
}

var theWorld = sync.OnceValues(func() (*world, error) {
	m, err := testmodels.Small()
	if err != nil {
		return nil, err
	}
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	train, err := dataset.LoadTrain(dir)
	if err != nil {
		return nil, err
	}
	test, err := dataset.LoadTest(dir)
	if err != nil {
		return nil, err
	}
	pk, _, err := mpcsetup.SetupOfOne(context.Background(), spec, 3, "", nil)
	if err != nil {
		return nil, err
	}
	salt := zk.Salt{31: 7}
	prover, err := zk.NewProver(m, salt, pk)
	if err != nil {
		return nil, err
	}
	return &world{m: m, salt: salt, pk: pk, prover: prover, pool: train, test: test}, nil
})

// env is one deployment: ledger, server, proof service, client.
type env struct {
	w        *world
	node     *embedded.Node
	srv      *server.Server
	conn     *client.Conn
	verifier *client.Verifier
	proofs   *server.ProofService
	recorder *server.LedgerRecorder
	stop     func()
}

type dishonesty struct {
	network      func(w *world, hctx *he.Context) (*he.Network, error)
	perRequest   func(string) *he.Network
	interceptor  grpc.UnaryServerInterceptor
	mangle       func(*ledgerv1.InferenceReceipt)
	tamper       func(*ledgerv1.ChallengeProof)
	clientRandom *rand.Rand
}

func newEnv(t *testing.T, d dishonesty) *env {
	t.Helper()
	w, err := theWorld()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	node, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "ledger.db"), ChainID: chainID, Verifier: zkverify.New(), SigningKey: nodeKey})
	if err != nil {
		t.Fatal(err)
	}
	// The model owner (here also the server operator) registers the model.
	_, serverKey, _ := ed25519.GenerateKey(nil)
	vkb, err := w.pk.VK.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := w.prover.Commitment()
	reg, err := ledger.SignTx(serverKey, &ledgerv1.TxBody{ChainId: chainID, Tx: &ledgerv1.TxBody_RegisterModel{RegisterModel: &ledgerv1.RegisterModel{
		ModelId: w.m.Name, Architecture: "784-8-sq-10", Commitment: c[:], VerifyingKey: vkb, OutputsPerChallenge: 10,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Submit(ctx, reg); err != nil {
		t.Fatal(err)
	}
	rec := &server.LedgerRecorder{Ledger: node, ChainID: chainID, Key: serverKey, Mangle: d.mangle}
	cfg := server.Config{Models: []*model.Model{w.m}, Commitments: map[string][]byte{w.m.Name: c[:]}, Recorder: rec, PerRequest: d.perRequest}
	if d.network != nil {
		hctx, err := he.NewContext(he.DefaultParameters)
		if err != nil {
			t.Fatal(err)
		}
		net, err := d.network(w, hctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Networks = map[string]*he.Network{w.m.Name: net}
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{})
	var opts server.Options
	opts.Ready = func(string, string) { close(ready) }
	if d.interceptor != nil {
		opts.Interceptors = []grpc.UnaryServerInterceptor{d.interceptor}
	}
	go func() { done <- srv.Serve(sctx, lis, opts) }()
	<-ready
	conn, err := client.Dial(lis.Addr().String(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.NewClassifier(ctx, conn, w.m.Name, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, clientKey, _ := ed25519.GenerateKey(nil)
	e := &env{
		w: w, node: node, srv: srv, conn: conn, recorder: rec,
		verifier: &client.Verifier{Classifier: cl, Ledger: node, ChainID: chainID, Key: clientKey, Pool: w.pool, Blocks: 4, Poll: 20 * time.Millisecond, Rand: d.clientRandom},
		proofs:   &server.ProofService{Ledger: node, ChainID: chainID, Key: serverKey, Provers: map[string]server.ModelProver{w.m.Name: {Prover: w.prover, Batch: 3}}, Tamper: d.tamper},
	}
	e.stop = func() {
		conn.Close()
		cancel()
		<-done
		rec.Wait()
		node.Close()
	}
	t.Cleanup(e.stop)
	return e
}

// round runs the whole protocol for one image and returns the outcome.
func (e *env) round(t *testing.T, idx int) (*client.Request, *client.Outcome) {
	t.Helper()
	ctx := context.Background()
	req, err := e.verifier.Classify(ctx, e.w.test.Images[idx])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.verifier.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.proofs.ProveOnce(ctx); err != nil && !strings.Contains(err.Error(), "rejected") {
		t.Fatal(err)
	}
	out, err := e.verifier.Settle(ctx, req, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return req, out
}

func TestHonestServerIsAccepted(t *testing.T) {
	e := newEnv(t, dishonesty{})
	for _, idx := range []int{0, 1, 2} {
		req, out := e.round(t, idx)
		plain, _ := e.w.m.Forward(e.w.test.Images[idx][:])
		if req.Class != model.Class(plain) {
			t.Errorf("image %d: private class %d, plaintext class %d", idx, req.Class, model.Class(plain))
		}
		if !out.Accept {
			t.Fatalf("image %d: honest server rejected: %s", idx, out.Reason)
		}
		a, err := client.AuditRequest(context.Background(), e.node, req.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !a.OK() || !a.HasVerdict || !a.Accepted {
			for _, c := range a.Checks {
				t.Logf("%v %s: %s", c.OK, c.What, c.Info)
			}
			t.Fatalf("image %d: the audit fails", idx)
		}
		t.Logf("image %d: class %d, max |decrypted-proven| %.3f, protocol overhead %.2f ms of %.1f ms", idx, req.Class, out.MaxDiff,
			req.ProtocolMS, req.Result.EncryptMS+req.Result.RoundTripMS+req.Result.DecryptMS)
	}
}

func TestServerWithAnotherModelOnEveryBlockIsRejected(t *testing.T) {
	e := newEnv(t, dishonesty{network: func(w *world, hctx *he.Context) (*he.Network, error) {
		return hctx.Compile(testmodels.Perturbed(w.m, 25))
	}})
	_, out := e.round(t, 0)
	if out.Accept || !strings.Contains(out.Reason, "differ from the committed model") {
		t.Fatalf("want a rejection for differing challenge scores, got accept=%v: %s", out.Accept, out.Reason)
	}
	t.Log(out.Reason)
}

// A server that runs another model on one block, chosen at random, is
// caught exactly when that block holds a challenge: with probability
// (k-1)/k = 3/4. Over 80 requests with fixed seeds the detection rate must
// lie within 4 standard deviations of 3/4.
func TestBlockSelectiveServerIsCaughtAtTheExpectedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("80 encrypted requests")
	}
	w, err := theWorld()
	if err != nil {
		t.Fatal(err)
	}
	hctx, err := he.NewContext(he.DefaultParameters)
	if err != nil {
		t.Fatal(err)
	}
	bad := testmodels.Perturbed(w.m, 25)
	layout := 8
	// One network per possible cheated block among the k = 4 used.
	nets := make([]*he.Network, 4)
	for j := range nets {
		ms := make([]*model.Model, layout)
		for b := range ms {
			ms[b] = w.m
		}
		ms[j] = bad
		if nets[j], err = hctx.CompilePerBlock(ms); err != nil {
			t.Fatal(err)
		}
	}
	serverRand := rand.New(rand.NewPCG(11, 12))
	var mu sync.Mutex
	cheated := -1
	// The dishonest server picks the cheated block afresh for each request.
	e := newEnv(t, dishonesty{clientRandom: rand.New(rand.NewPCG(21, 22)), perRequest: func(string) *he.Network {
		mu.Lock()
		defer mu.Unlock()
		return nets[cheated]
	}})
	const trials = 80
	detected, realCheated := 0, 0
	for i := 0; i < trials; i++ {
		mu.Lock()
		cheated = serverRand.IntN(4)
		mu.Unlock()
		req, err := e.verifier.Classify(context.Background(), w.test.Images[i])
		if err != nil {
			t.Fatal(err)
		}
		rows := make([]int64, 0, 10*len(req.Challenges))
		for _, c := range req.Challenges {
			y, _ := w.m.Forward(c[:])
			rows = append(rows, y...)
		}
		ok, _, _ := e.verifier.Compare(req, rows)
		if !ok {
			detected++
		}
		if req.RealBlock == cheated {
			realCheated++
			if !ok {
				t.Fatalf("trial %d: a server cheating only on the real block was flagged", i)
			}
		} else if ok {
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
	e := newEnv(t, dishonesty{interceptor: replayFirstOutput(&sync.Mutex{})})
	e.round(t, 0)
	ctx := context.Background()
	req, err := e.verifier.Classify(ctx, e.w.test.Images[1])
	if !errors.Is(err, client.ErrBadReceipt) {
		t.Fatalf("a replayed output was accepted by the client: %v", err)
	}
	if _, err := e.verifier.Reject(ctx, req.ID, err.Error()); err != nil {
		t.Fatal(err)
	}
	rec, err := e.node.Request(ctx, req.ID)
	if err != nil || !rec.GetHasVerdict() || rec.GetVerdictAccept() {
		t.Fatalf("no recorded rejection: %v %v", rec, err)
	}
	t.Log(rec.GetVerdictReason())
}

func TestReplayWithMatchingReceiptIsRejected(t *testing.T) {
	// Same replay, but the server also signs a receipt for the replayed
	// ciphertext: the client's challenge check catches it.
	var mu sync.Mutex
	var firstDigest []byte
	replay := replayFirstOutput(&mu)
	mangle := func(rc *ledgerv1.InferenceReceipt) {
		mu.Lock()
		defer mu.Unlock()
		if firstDigest == nil {
			firstDigest = rc.OutputDigest
		} else {
			rc.OutputDigest = firstDigest
		}
	}
	e := newEnv(t, dishonesty{interceptor: replay, mangle: mangle})
	e.round(t, 0)
	_, out := e.round(t, 1)
	if out.Accept {
		t.Fatalf("replayed output accepted: %s", out.Reason)
	}
	t.Log(out.Reason)
}

func TestFalseClaimsAreRejectedByTheLedger(t *testing.T) {
	// The server claims outputs the model does not produce: it cannot
	// prove them, so it alters the outputs of a valid proof. Every ledger
	// node rejects the proof; the client, seeing no proof, rejects.
	e := newEnv(t, dishonesty{tamper: func(cp *ledgerv1.ChallengeProof) { cp.Outputs[0] += 4096 }})
	ctx := context.Background()
	req, err := e.verifier.Classify(ctx, e.w.test.Images[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.verifier.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err = e.proofs.ProveOnce(ctx)
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_PROOF_INVALID {
		t.Fatalf("the ledger accepted or mis-rejected a false claim: %v", err)
	}
	out, err := e.verifier.Settle(ctx, req, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if out.Accept || !strings.Contains(out.Reason, "no proof") {
		t.Fatalf("verdict %v: %s", out.Accept, out.Reason)
	}
	// And the prover refuses to prove false outputs in the first place.
	claimed := make([][]int64, 3)
	for i := range claimed {
		claimed[i] = make([]int64, 10)
	}
	if _, err := e.w.prover.ProveClaim(ctx, req.Challenges, claimed); err == nil {
		t.Fatal("proved outputs the model does not produce")
	}
}
