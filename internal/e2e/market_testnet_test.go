package e2e

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
)

// TestMarketOnFourValidators runs the market on a real 4-validator
// CometBFT testnet, every validator a separate process with the real
// Groth16 verifier and the real dispute verifier: the genesis funds two
// providers and a client; an honest provider is paid through the escrow;
// a provider that runs another model is caught, and the client's dispute
// (seed and both ciphertexts, about 246 KB) is checked by every validator,
// which all refund the client and slash the provider alike: the same
// escrow, balances and stake on every node.
func TestMarketOnFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-validator CometBFT testnet")
	}
	w := getWorld(t)
	dir := t.TempDir()
	ports := freePorts(t, 16)
	var pp [][4]int
	for i := 0; i < 4; i++ {
		pp = append(pp, [4]int{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]})
	}
	const chain = "veil-e2e-market"
	_, honestKey := keyPair(t)
	_, cheatKey := keyPair(t)
	_, clientKey := keyPair(t)
	m := ledger.MarketDefaults()
	m.DisputeWindowBlocks = 100
	m.Genesis = []ledger.Allocation{
		{Account: honestKey.Public().(ed25519.PublicKey), Amount: 200 * ledger.Unit},
		{Account: cheatKey.Public().(ed25519.PublicKey), Amount: 200 * ledger.Unit},
		{Account: clientKey.Public().(ed25519.PublicKey), Amount: 20 * ledger.Unit},
	}
	if err := cometbft.WriteTestnet(cometbft.TestnetOptions{Dir: dir, Nodes: 4, ChainID: chain, Ports: pp, TimeoutCommit: 300 * time.Millisecond,
		Params: ledger.Params{ProofDeadlineBlocks: 200, Market: m}}); err != nil {
		t.Fatal(err)
	}
	procs := startValidators(t, dir, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var nodes []*query.Client
	for i := range procs {
		c, err := query.Dial(fmt.Sprintf("127.0.0.1:%d", pp[i][2]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		nodes = append(nodes, c)
	}
	for i, c := range nodes {
		for {
			ci, err := c.ChainInfo(ctx)
			if err == nil && ci.GetHeight() >= 2 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("validator %d did not start: %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	anchor, err := trust.AnchorFromGenesis(filepath.Join(cometbft.NodeDir(dir, 0), "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}

	// Two providers of the committed model, each with an offer, recording
	// through validator 1; the cheap one evaluates another model.
	type prov struct {
		dep  *protocol.Deployment
		addr string
	}
	startProvider := func(id string, key ed25519.PrivateKey, eval server.Evaluator) prov {
		mm := *w.m
		mm.Name = id
		dep, err := protocol.Deploy(ctx, protocol.DeployOptions{Model: &mm, Salt: w.salt, Keys: w.pk, Ledger: nodes[1], ChainID: chain, Owner: key, Server: key,
			Offer: &protocol.OfferOptions{Endpoint: id, Price: ledger.Unit / 10, Stake: 100 * ledger.Unit, UnbondingDelay: m.MinUnbondingDelayBlocks}})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(server.Config{Models: []*model.Model{&mm}, Recorder: dep.Recorder, Evaluator: eval})
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		ready := make(chan struct{})
		go func() { served <- srv.Serve(sctx, lis, server.Options{Ready: func(string, string) { close(ready) }}) }()
		<-ready
		t.Cleanup(func() { stop(); <-served; dep.Recorder.Wait() })
		return prov{dep, lis.Addr().String()}
	}
	honest := startProvider(w.m.Name, honestKey, nil)
	other, err := compileWith(testmodels.Perturbed(w.m, 25))
	if err != nil {
		t.Fatal(err)
	}
	cheap := startProvider(w.m.Name+"-cheap", cheatKey, netEvaluator{other})

	// The client reads validator 2 and pins the genesis validators.
	reader := &trust.Reader{API: nodes[2], Anchor: anchor}
	connect := func(p prov, id string) *protocol.Client {
		conn, err := client.Dial(p.addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c, err := protocol.Connect(ctx, protocol.ConnectOptions{Conn: conn, Ledger: reader, ModelID: id, DataDir: t.TempDir(), Key: clientKey, Pool: w.pool, Blocks: 4, MaxRequestsPerKey: 1})
		if err != nil {
			t.Fatal(err)
		}
		c.Poll = 100 * time.Millisecond
		return c
	}
	round := func(c *protocol.Client, p prov, i int) (*protocol.Request, *protocol.Outcome) {
		t.Helper()
		req, err := c.Classify(ctx, w.test.Images[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Reveal(ctx, req); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := p.dep.Prover.ProveOnce(ctx)
			if err != nil {
				t.Fatalf("prover: %v", err)
			}
			if n > 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		out, err := c.Settle(ctx, req, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return req, out
	}
	// Every validator's state must say the same about an escrow and the
	// accounts (what each computed itself from the same blocks).
	agree := func(req *protocol.Request, want ledgerv1.EscrowStatus) *ledgerv1.EscrowRecord {
		t.Helper()
		var first *ledgerv1.EscrowRecord
		var balances [][]uint64
		for i, n := range nodes {
			var e *ledgerv1.EscrowRecord
			for {
				e, err = n.Escrow(ctx, req.Key[:])
				if err == nil && e.GetStatus() == want {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("validator %d: escrow %v (%v), want %v", i, e, err, want)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if first == nil {
				first = e
			} else if e.GetSlashed() != first.GetSlashed() || e.GetSettleHeight() != first.GetSettleHeight() {
				t.Fatalf("validators disagree on the escrow: %+v and %+v", first, e)
			}
			var bs []uint64
			for _, k := range []ed25519.PrivateKey{honestKey, cheatKey, clientKey} {
				b, err := protocol.BalanceOf(ctx, n, k.Public().(ed25519.PublicKey))
				if err != nil {
					t.Fatal(err)
				}
				bs = append(bs, b)
			}
			balances = append(balances, bs)
			for j := range bs {
				if bs[j] != balances[0][j] {
					t.Fatalf("validators %d and 0 disagree on balance %d: %d and %d", i, j, bs[j], balances[0][j])
				}
			}
		}
		return first
	}

	ch := connect(honest, w.m.Name)
	req, out := round(ch, honest, 0)
	if !out.Accept {
		t.Fatalf("the honest provider was rejected: %s", out.Detail)
	}
	agree(req, ledgerv1.EscrowStatus_ESCROW_STATUS_PAID)

	cc := connect(cheap, w.m.Name+"-cheap")
	req, out = round(cc, cheap, 1)
	if out.Accept {
		t.Fatal("another model on every block was accepted")
	}
	t0 := time.Now()
	res, err := cc.Dispute(ctx, req, out)
	if err != nil {
		t.Fatal(err)
	}
	e := agree(req, ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD)
	t.Logf("dispute #%d accepted by the testnet in %.1f s: %s; %d slashed, %d to the client", res.Index, time.Since(t0).Seconds(), res.Detail, e.GetSlashed(), e.GetToClient())
	// The same stake and balances on every validator, and one app hash.
	var offers []*ledgerv1.OfferRecord
	for _, n := range nodes {
		o, err := n.Offer(ctx, w.m.Name+"-cheap")
		if err != nil {
			t.Fatal(err)
		}
		offers = append(offers, o)
	}
	for i, o := range offers {
		if o.GetFrauds() != 1 || o.GetBonded() != offers[0].GetBonded() {
			t.Fatalf("validator %d says the cheap offer is %+v", i, o)
		}
	}
	if e.GetSlashed() != 2*ledger.Unit || e.GetToClient() != ledger.Unit {
		t.Fatalf("escrow after the fraud: %+v (collateral 2 VEIL, half to the client)", e)
	}
}
