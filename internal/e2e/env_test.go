package e2e

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

const chainID = "veil-e2e"

// deadline is the proof deadline of the test chain, in blocks; the
// embedded node makes a block every blockInterval when idle.
const (
	deadline      = 15
	blockInterval = 20 * time.Millisecond
)

// world is the shared, expensive part: the model, its Groth16 keys (a real
// ceremony of one at batch 3) and MNIST.
type world struct {
	m      *model.Model
	spec   *circuits.Spec
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
	return makeWorld(m)
})

// theGeneralWorld serves a general network (polynomial activations:
// testmodels.Poly) instead of the default shape.
var theGeneralWorld = sync.OnceValues(func() (*world, error) {
	m, err := testmodels.Poly(3)
	if err != nil {
		return nil, err
	}
	return makeWorld(m)
})

func makeWorld(m *model.Model) (*world, error) {
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
	return &world{m: m, spec: spec, salt: salt, pk: pk, prover: prover, pool: train, test: test}, nil
}

func getWorld(t testing.TB) *world {
	t.Helper()
	w, err := theWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// Dishonest behaviour is injected through the interfaces the roles use:
// the server's Evaluator and Recorder, the prover's ChallengeProver, and
// gRPC interceptors on the inference server and on the ledger node the
// client reads (a lying node).
type options struct {
	evaluator    func(w *world) (server.Evaluator, error)
	recorder     func(honest *protocol.Recorder) server.Recorder
	prover       func(honest protocol.ChallengeProver) protocol.ChallengeProver
	inference    grpc.UnaryServerInterceptor
	ledgerLies   grpc.UnaryServerInterceptor
	clientRandom *rand.Rand
	blocks       int
	maxPerKey    int
	maxPerClient int // outstanding requests per client admitted by the server
	skipConnect  bool
	serverConfig func(*server.Config)
	// market, when set, runs the chain with fees and the model with an
	// offer (market_test.go); clients are funded from a faucet.
	market *marketOptions
	// general serves theGeneralWorld's model (polynomial activations).
	general bool
}

// env is one deployment: ledger node (served on its own gRPC port),
// registered model, server, prover, and a client that reads the ledger
// through gRPC and pins the node's key.
type env struct {
	w          *world
	faucet     ed25519.PrivateKey // funded at genesis (market chains)
	node       *embedded.Node
	nodeKey    ed25519.PrivateKey
	ledgerAddr string
	serverAddr string
	serverKey  ed25519.PrivateKey
	dep        *protocol.Deployment
	srv        *server.Server
	conn       *client.Conn
	reader     *trust.Reader
	client     *protocol.Client
	o          options
	stop       func()
}

// netEvaluator evaluates a fixed network whatever the model: a server that
// runs something other than what it committed to.
type netEvaluator struct{ net *he.Network }

func (e netEvaluator) Evaluate(ctx context.Context, _ string, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error) {
	return e.net.Evaluate(ctx, in, keys)
}

func compileWith(m *model.Model) (*he.Network, error) {
	hctx, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		return nil, err
	}
	return hctx.Compile(m, he.DefaultEvaluationSettings)
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	w := getWorld(t)
	if o.general {
		var err error
		if w, err = theGeneralWorld(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	dir := t.TempDir()
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	_, faucet, _ := ed25519.GenerateKey(nil)
	_, serverKey, _ := ed25519.GenerateKey(nil)
	params := ledger.Params{ProofDeadlineBlocks: deadline}
	if o.market != nil {
		params = o.market.params(faucet, serverKey)
	}
	node, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "ledger.db"), ChainID: chainID, Verifier: zkverify.New(), Disputes: heverify.New(),
		SigningKey: nodeKey, Params: params, BlockInterval: blockInterval})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{w: w, node: node, nodeKey: nodeKey, o: o, faucet: faucet, serverKey: serverKey}
	var closers []func()
	e.stop = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	t.Cleanup(func() { e.stop() })
	closers = append(closers, func() { node.Close() })

	// The ledger node's gRPC API, possibly lying.
	var lopts []grpc.ServerOption
	if o.ledgerLies != nil {
		lopts = append(lopts, grpc.UnaryInterceptor(o.ledgerLies))
	}
	lsrv := grpc.NewServer(append(lopts, grpc.MaxRecvMsgSize(query.MaxMessageBytes))...)
	ledgerv1.RegisterLedgerServiceServer(lsrv, &query.GRPCServer{API: node})
	llis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go lsrv.Serve(llis)
	closers = append(closers, lsrv.Stop)
	e.ledgerAddr = llis.Addr().String()

	// The model owner (here also the server operator) deploys the model.
	dopts := protocol.DeployOptions{Model: w.m, Salt: w.salt, Keys: w.pk, Ledger: node, ChainID: chainID, Owner: e.serverKey, Server: e.serverKey}
	if o.market != nil {
		dopts.Offer = &protocol.OfferOptions{Endpoint: "127.0.0.1", Price: o.market.price, Stake: o.market.stake, UnbondingDelay: 20}
	}
	e.dep, err = protocol.Deploy(ctx, dopts)
	if err != nil {
		t.Fatal(err)
	}
	if o.maxPerClient != 0 {
		e.dep.Recorder.Admission.MaxPerClient = o.maxPerClient
	}
	var rec server.Recorder = e.dep.Recorder
	if o.recorder != nil {
		rec = o.recorder(e.dep.Recorder)
	}
	if o.prover != nil {
		mp := e.dep.Prover.Models[w.m.Name]
		mp.Prover = o.prover(mp.Prover)
		e.dep.Prover.Models[w.m.Name] = mp
	}
	cfg := server.Config{Models: []*model.Model{w.m}, Recorder: rec}
	if o.general {
		for i := range 64 {
			cfg.Probe = append(cfg.Probe, w.pool.Images[i][:])
		}
	}
	if o.evaluator != nil {
		if cfg.Evaluator, err = o.evaluator(w); err != nil {
			t.Fatal(err)
		}
	}
	if o.serverConfig != nil {
		o.serverConfig(&cfg)
	}
	e.srv, err = server.New(cfg)
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
	sopts := server.Options{Ready: func(string, string) { close(ready) }}
	if o.inference != nil {
		sopts.Interceptors = []grpc.UnaryServerInterceptor{o.inference}
	}
	go func() { done <- e.srv.Serve(sctx, lis, sopts) }()
	<-ready
	closers = append(closers, func() { cancel(); <-done; e.dep.Recorder.Wait() })
	e.serverAddr = lis.Addr().String()

	e.conn, err = client.Dial(e.serverAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { e.conn.Close() })
	lc, err := query.Dial(e.ledgerAddr)
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { lc.Close() })
	e.reader = &trust.Reader{API: lc, Anchor: trust.Anchor{ChainID: chainID, NodeKey: nodeKey.Public().(ed25519.PublicKey)}}
	if o.skipConnect {
		return e
	}
	e.client = e.connect(t, t.TempDir())
	return e
}

// connect makes a fresh client (its own keys and identity).
func (e *env) connect(t *testing.T, dir string) *protocol.Client {
	t.Helper()
	_, clientKey, _ := ed25519.GenerateKey(nil)
	if e.o.market != nil {
		if err := protocol.Fund(context.Background(), e.node, chainID, e.faucet, clientKey.Public().(ed25519.PublicKey), clientFunds); err != nil {
			t.Fatal(err)
		}
	}
	blocks := e.o.blocks
	if blocks == 0 {
		blocks = 4
	}
	c, err := protocol.Connect(context.Background(), protocol.ConnectOptions{
		Conn: e.conn, Ledger: e.reader, ModelID: e.w.m.Name, DataDir: dir, Key: clientKey, Pool: e.w.pool, Blocks: blocks, MaxRequestsPerKey: e.o.maxPerKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Poll = 20 * time.Millisecond
	c.Rand = e.o.clientRandom
	return c
}

// round runs the whole protocol for one image and returns the outcome.
func (e *env) round(t *testing.T, idx int) (*protocol.Request, *protocol.Outcome) {
	t.Helper()
	ctx := context.Background()
	req, err := e.client.Classify(ctx, e.w.test.Images[idx])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.Reveal(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dep.Prover.ProveOnce(ctx); err != nil {
		t.Logf("prover: %v", err)
	}
	out, err := e.client.Settle(ctx, req, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return req, out
}

// tinyKey is the verifying key of another circuit (the tiny model's, at
// batch 3), made once.
var tinyKey = sync.OnceValues(func() ([]byte, error) {
	spec, err := circuits.SpecOf(testmodels.Tiny(1))
	if err != nil {
		return nil, err
	}
	pk, _, err := mpcsetup.SetupOfOne(context.Background(), spec, 3, "", nil)
	if err != nil {
		return nil, err
	}
	return pk.VK.MarshalBinary()
})

// openLaxLedger is an embedded node whose verifier accepts every
// registration: a node that does not check what it records.
func openLaxLedger(t *testing.T) *embedded.Node {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "lax.db"), ChainID: chainID, Verifier: permissive{zkverify.New()}, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func keyPair(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}
