package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
)

// nodeEnv makes the test binary run one validator (with the real Groth16
// verifier and the query API) instead of the tests.
const nodeEnv = "VEIL_E2E_NODE_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(nodeEnv); home != "" {
		os.Exit(runNode(home))
	}
	os.Exit(m.Run())
}

func runNode(home string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lc, err := cometbft.ReadLedgerConfig(home)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, err := cometbft.StartNode(ctx, home, cometbft.NodeOptions{Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(), Configure: cometbft.FastConsensus})
	if err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		return 1
	}
	defer n.Stop()
	// As `veil ledger node` does: the validator's part in phase 1, if the
	// chain has one open and home has a contributor key.
	go func() {
		if _, err := protocol.ValidatorPhase1(ctx, n, home, n.ValidatorIndex(), nil); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "phase 1:", err)
		}
	}()
	gl, err := net.Listen("tcp", lc.GRPCAddr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := query.Serve(ctx, n, gl, nil); err != nil {
		fmt.Fprintln(os.Stderr, "query:", err)
		return 1
	}
	return 0
}

// startValidators runs validators 0..n-1 of the testnet in dir, each a
// process of this test binary (runNode), stopped when the test ends.
func startValidators(t *testing.T, dir string, n int) []*exec.Cmd {
	t.Helper()
	procs := make([]*exec.Cmd, n)
	for i := range procs {
		procs[i] = startValidator(t, dir, i)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil { // a test may have killed one and not restarted it
				p.Process.Signal(syscall.SIGTERM)
				p.Wait()
			}
		}
	})
	return procs
}

// startValidator starts validator i's process (startValidators stops the
// ones in the slice it returned when the test ends).
func startValidator(t *testing.T, dir string, i int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+cometbft.NodeDir(dir, i))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestVerifiablePathOnFourValidators runs the protocol on a real
// 4-validator CometBFT testnet, every validator a separate process
// verifying Groth16 proofs for real: the server records through one
// validator, the client reads another and trusts only heads signed by more
// than two thirds of the genesis validators, and learns the chain id from
// the genesis it pins. One validator is killed with SIGKILL mid-way (the
// other three keep committing and the protocol goes on) and restarted (it
// catches up and serves quorum-verified heads again).
func TestVerifiablePathOnFourValidators(t *testing.T) {
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
	const chain = "veil-e2e-testnet"
	if err := cometbft.WriteTestnet(cometbft.TestnetOptions{Dir: dir, Nodes: 4, ChainID: chain, Ports: pp, TimeoutCommit: 300 * time.Millisecond,
		Params: ledger.Params{ProofDeadlineBlocks: 100}}); err != nil {
		t.Fatal(err)
	}
	procs := startValidators(t, dir, 4)
	start := func(i int) { procs[i] = startValidator(t, dir, i) } // a restart; the cleanup stops it too
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dial := func(i int) *query.Client {
		c, err := query.Dial(fmt.Sprintf("127.0.0.1:%d", pp[i][2]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	nodes := []*query.Client{dial(0), dial(1), dial(2), dial(3)}
	anchor, err := trust.AnchorFromGenesis(filepath.Join(cometbft.NodeDir(dir, 0), "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	waitHeight := func(c *query.Client, h uint64, what string) {
		t.Helper()
		for {
			ci, err := c.ChainInfo(ctx)
			if err == nil && ci.GetHeight() >= h {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s to reach height %d: %v", what, h, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i, c := range nodes {
		waitHeight(c, 2, fmt.Sprintf("validator %d", i))
	}

	// The model owner deploys through validator 1; the server records
	// receipts and proofs through it.
	ci, err := nodes[1].ChainInfo(ctx)
	if err != nil || ci.GetChainId() != chain || len(ci.GetValidators()) != 4 {
		t.Fatalf("chain info: %v %v", ci, err)
	}
	_, serverKey := keyPair(t)
	dep, err := protocol.Deploy(ctx, protocol.DeployOptions{Model: w.m, Salt: w.salt, Keys: w.pk, Ledger: nodes[1], ChainID: ci.GetChainId(), Owner: serverKey, Server: serverKey})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Models: []*model.Model{w.m}, Recorder: dep.Recorder})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stopServer := context.WithCancel(ctx)
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() { served <- srv.Serve(sctx, lis, server.Options{Ready: func(string, string) { close(ready) }}) }()
	<-ready
	defer func() { stopServer(); <-served; dep.Recorder.Wait() }()
	conn, err := client.Dial(lis.Addr().String(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// The client reads validator 2 and pins the genesis validators; the
	// registration went through validator 1, so wait until 2 has it.
	for {
		if _, err := nodes[2].Model(ctx, w.m.Name, false); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("validator 2 never saw the registration: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reader := &trust.Reader{API: nodes[2], Anchor: anchor}
	_, clientKey := keyPair(t)
	c, err := protocol.Connect(ctx, protocol.ConnectOptions{Conn: conn, Ledger: reader, ModelID: w.m.Name, DataDir: t.TempDir(), Key: clientKey, Pool: w.pool, Blocks: 4})
	if err != nil {
		t.Fatal(err)
	}
	c.Poll = 100 * time.Millisecond
	round := func(i int) *protocol.Request {
		t.Helper()
		t0 := time.Now()
		req, err := c.Classify(ctx, w.test.Images[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Reveal(ctx, req); err != nil {
			t.Fatal(err)
		}
		for {
			n, err := dep.Prover.ProveOnce(ctx)
			if err != nil {
				t.Fatalf("prover: %v", err)
			}
			if n > 0 {
				break
			}
			time.Sleep(200 * time.Millisecond) // the reveal is not committed on validator 1 yet
		}
		out, err := c.Settle(ctx, req, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Accept {
			t.Fatalf("image %d rejected on the testnet (%s): %s", i, out.Reason, out.Detail)
		}
		t.Logf("image %d: accepted in %.1f s (max diff %.0f of %d units)", i, time.Since(t0).Seconds(), out.MaxDiff, out.Tolerance)
		return req
	}
	round(0)

	// Kill validator 3 (SIGKILL): three of four keep committing.
	if err := procs[3].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	procs[3].Wait()
	procs[3] = nil
	second := round(1)

	// Restart it: it catches up and vouches for the same log.
	start(3)
	ci2, _ := nodes[2].ChainInfo(ctx)
	waitHeight(nodes[3], ci2.GetHeight(), "the restarted validator")
	round(2)
	a, err := protocol.AuditRequest(ctx, &trust.Reader{API: nodes[3], Anchor: anchor}, second.Key[:], protocol.Pin{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() || !a.Accepted {
		for _, ch := range a.Checks {
			t.Logf("%v %s: %s", ch.OK, ch.What, ch.Info)
		}
		t.Fatal("audit through the restarted validator fails")
	}
	// The quorum head is checked against the pinned chain and validator
	// set: for another chain id, or another set, it does not verify.
	bad := trust.Anchor{ChainID: "another-chain", Validators: anchor.Validators}
	if _, err := (&trust.Reader{API: nodes[0], Anchor: bad}).Head(ctx); err == nil {
		t.Fatal("a quorum head was accepted for another chain id")
	}
	fewer := anchor
	fewer.Validators = anchor.Validators[:3]
	if _, err := (&trust.Reader{API: nodes[0], Anchor: fewer}).Head(ctx); err == nil || !strings.Contains(err.Error(), "validators") {
		t.Fatalf("a quorum head was accepted against another validator set: %v", err)
	}
}
