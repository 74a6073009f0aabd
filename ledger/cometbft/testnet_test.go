package cometbft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/trust"
	"google.golang.org/protobuf/proto"
)

const testChain = "veil-cometbft-test"

// helperEnv makes the test binary run one validator (the one the test
// kills with SIGKILL) instead of the tests.
const helperEnv = "VEIL_LEDGER_TEST_NODE_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(helperEnv); home != "" {
		os.Exit(runHelperNode(home))
	}
	os.Exit(m.Run())
}

func runHelperNode(home string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	n, err := StartNode(ctx, home, NodeOptions{Verifier: ledgertest.FakeVerifier{}, Configure: fastConsensus})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper node:", err)
		return 1
	}
	<-ctx.Done()
	if err := n.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "helper node stop:", err)
		return 1
	}
	return 0
}

var fastConsensus = FastConsensus

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

// rpcHeight asks a node's CometBFT RPC for its latest height.
func rpcHeight(port int) (int64, error) {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/status")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Result struct {
			SyncInfo struct {
				Height string `json:"latest_block_height"`
			} `json:"sync_info"`
		} `json:"result"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("status: %w: %s", err, b)
	}
	return strconv.ParseInt(st.Result.SyncInfo.Height, 10, 64)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFourValidators runs a 4-validator testnet on loopback: node 0
// proposes an invalid proof in every block it proposes (the others'
// ProcessProposal rejects it), node 3 is a separate process that is
// killed with SIGKILL while the other three keep committing, then
// restarted; it catches up, and all nodes end with the same app hash and
// log root.
func TestFourValidators(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 4-node CometBFT testnet")
	}
	dir := t.TempDir()
	ports := freePorts(t, 16)
	var pp [][4]int
	for i := 0; i < 4; i++ {
		pp = append(pp, [4]int{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]})
	}
	if err := WriteTestnet(TestnetOptions{Dir: dir, Nodes: 4, ChainID: testChain, Ports: pp, TimeoutCommit: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"node_key.json", "priv_validator_key.json"} {
		if st, err := os.Stat(filepath.Join(NodeDir(dir, 0), "config", f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
	f := ledgertest.NewFixture(testChain, "net")
	var reqs []*ledgertest.Request
	for i := 0; i < 6; i++ {
		reqs = append(reqs, f.NewRequest("m", fmt.Sprintf("r%d", i), 3))
	}
	badProof := f.Proof(reqs[:1], true)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &bytes.Buffer{}
	var logMu sync.Mutex
	logw := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	nodes := make([]*Node, 3)
	for i := 0; i < 3; i++ {
		o := NodeOptions{Verifier: ledgertest.FakeVerifier{}, Configure: fastConsensus, Log: logw}
		if i == 0 {
			o.mutateProposal = func(txs [][]byte) [][]byte { return append(txs, badProof) }
		}
		n, err := StartNode(ctx, NodeDir(dir, i), o)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = n
		defer n.Stop()
	}
	startChild := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+NodeDir(dir, 3))
		cmd.Stderr = logw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	child := startChild()
	defer func() {
		if child != nil {
			child.Process.Kill()
			child.Wait()
		}
	}()
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("CometBFT logs (errors):\n%s", tail(logs.String(), 4000))
			logMu.Unlock()
		}
	}()
	waitFor(t, "all four nodes to commit block 2", time.Minute, func() bool {
		h, err := rpcHeight(pp[3][1])
		return err == nil && h >= 2 && nodes[0].Height() >= 2 && nodes[1].Height() >= 2 && nodes[2].Height() >= 2
	})

	submitAll := func(via *Node, txs [][]byte) []*ledgerv1.SubmitResponse {
		t.Helper()
		out := make([]*ledgerv1.SubmitResponse, len(txs))
		errs := make([]error, len(txs))
		var wg sync.WaitGroup
		for i, tx := range txs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sctx, c := context.WithTimeout(ctx, 30*time.Second)
				defer c()
				out[i], errs[i] = via.Submit(sctx, tx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("submit tx %d: %v", i, err)
			}
		}
		// CheckTx runs against a node's committed state: before sending
		// the next phase through another node, let every node catch up.
		var top uint64
		for _, r := range out {
			top = max(top, r.Height)
		}
		waitFor(t, "running nodes to commit the phase", 20*time.Second, func() bool {
			for _, n := range nodes {
				if h, _, _, _ := n.Head(); h < top {
					return false
				}
			}
			return true
		})
		return out
	}
	submitAll(nodes[1], [][]byte{f.Register("m")})
	var receipts, reveals [][]byte
	for _, r := range reqs {
		receipts = append(receipts, f.Receipt(r))
		reveals = append(reveals, f.Reveal(r))
	}
	submitAll(nodes[2], receipts)
	submitAll(nodes[1], reveals)
	// Now r0 is revealed and node 0's extra proof fails verification:
	// wait until honest validators have rejected such a proposal.
	waitFor(t, "an honest validator to reject a proposal with an invalid proof", 30*time.Second, func() bool {
		_, a := nodes[1].App().ProposalsRejected(ledgerv1.Code_CODE_PROOF_INVALID)
		_, b := nodes[2].App().ProposalsRejected(ledgerv1.Code_CODE_PROOF_INVALID)
		return a+b > 0
	})

	// Kill node 3 (SIGKILL: no shutdown, no final fsync) and keep going.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	child = nil
	hKill := nodes[1].Height()
	res := submitAll(nodes[1], [][]byte{f.Proof(reqs[2:3], false), f.Proof(reqs[3:6], false)})
	for _, r := range res {
		if r.Code != ledgerv1.Code_CODE_OK {
			t.Fatalf("proof rejected: %v", r)
		}
	}
	// Two valid but conflicting proofs (both cover r0) sent at once to two
	// nodes: exactly one commits, and the other's submitter learns
	// ALREADY_PROVEN (from CheckTx, or when the winner commits) instead of
	// waiting for its deadline.
	conflict := [][]byte{f.Proof(reqs[0:2], false), f.Proof(reqs[0:1], false)}
	var cerr [2]error
	var cwg sync.WaitGroup
	for i, tx := range conflict {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			sctx, c := context.WithTimeout(ctx, 20*time.Second)
			defer c()
			_, cerr[i] = nodes[1+i].Submit(sctx, tx)
		}()
	}
	cwg.Wait()
	won := -1
	for i, err := range cerr {
		var rj *ledger.Rejection
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatal("both conflicting proofs committed")
			}
			won = i
		case errors.As(err, &rj) && rj.Code == ledgerv1.Code_CODE_ALREADY_PROVEN:
		default:
			t.Fatalf("conflicting proof %d: %v, want ALREADY_PROVEN", i, err)
		}
	}
	if won < 0 {
		t.Fatal("neither conflicting proof committed")
	}
	t.Logf("conflicting proofs: %d won, the other got: %v", won, cerr[1-won])
	if won == 1 { // r1 is still unproven
		submitAll(nodes[1], [][]byte{f.Proof(reqs[1:2], false)})
	}
	submitAll(nodes[2], [][]byte{f.Verdict("r0", true), f.Verdict("r1", false)})
	waitFor(t, "three nodes to commit 3 more blocks without node 3", 30*time.Second, func() bool {
		return nodes[0].Height() >= hKill+3 && nodes[2].Height() >= hKill+3
	})

	// Honest validators rejected node 0's proposals with the invalid proof.
	sawProposal := false
	rs, _ := nodes[1].Rejections(ctx)
	for _, r := range rs {
		if strings.HasPrefix(r.Where, "proposal") && r.Kind == "ChallengeProof" && r.Code == ledgerv1.Code_CODE_PROOF_INVALID {
			sawProposal = true
		}
	}
	if !sawProposal {
		t.Errorf("node 1's rejection list lacks the invalid proposed proof: %v", rs)
	}
	for i := 1; i < 3; i++ {
		n, invalid := nodes[i].App().ProposalsRejected(ledgerv1.Code_CODE_PROOF_INVALID)
		if n == 0 {
			t.Errorf("node %d never rejected a proposal", i)
		}
		t.Logf("node %d rejected %d proposals, %d of them for an invalid proof", i, n, invalid)
	}

	// Restart node 3: it replays and catches up.
	child = startChild()
	target := nodes[1].Height()
	waitFor(t, "node 3 to catch up", time.Minute, func() bool {
		h, err := rpcHeight(pp[3][1])
		return err == nil && h >= target
	})
	// Stop node 3 cleanly to read its store, and compare everyone's.
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		t.Fatalf("node 3 exit: %v", err)
	}
	child = nil
	s3, err := ledger.Open(filepath.Join(NodeDir(dir, 3), "data", "veil-ledger.db"), ledger.Options{ChainID: testChain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("reader")})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	cp3, _ := s3.Checkpoint(ctx)
	wantSize := uint64(1 + 6 + 6 + 3 + 2)
	if won == 1 {
		wantSize++
	}
	if cp3.Size != wantSize {
		t.Fatalf("node 3 log size %d, want %d", cp3.Size, wantSize)
	}
	for i, n := range nodes {
		cp, err := n.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != cp3.Size || !bytes.Equal(cp.RootHash, cp3.RootHash) || !bytes.Equal(cp.AppHash, cp3.AppHash) {
			t.Fatalf("node %d: size %d root %x app %x; node 3: size %d root %x app %x", i, cp.Size, cp.RootHash[:8], cp.AppHash[:8], cp3.Size, cp3.RootHash[:8], cp3.AppHash[:8])
		}
		// Each node signs its own checkpoints; inclusion proofs verify.
		e, err := n.Entry(ctx, wantSize-1)
		if err != nil || ledger.VerifyInclusion(e, n.PublicKey()) != nil {
			t.Fatalf("node %d inclusion: %v", i, err)
		}
	}
	// Quorum checkpoints: what a node serves verifies against the genesis
	// validators; altered in any part, it does not.
	anchor, err := trust.AnchorFromGenesis(filepath.Join(NodeDir(dir, 0), "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	qc, err := nodes[0].QuorumCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.VerifyQuorumCheckpoint(qc, testChain, anchor.Validators); err != nil {
		t.Fatalf("quorum checkpoint: %v", err)
	}
	alter := map[string]func(q *ledgerv1.QuorumCheckpoint){
		"log size":      func(q *ledgerv1.QuorumCheckpoint) { q.Checkpoint.Size++ },
		"root":          func(q *ledgerv1.QuorumCheckpoint) { q.Checkpoint.RootHash[0] ^= 1 },
		"signed header": func(q *ledgerv1.QuorumCheckpoint) { q.SignedHeader[len(q.SignedHeader)-5] ^= 1 },
		"validator set": func(q *ledgerv1.QuorumCheckpoint) { q.ValidatorSet[len(q.ValidatorSet)-3] ^= 1 },
		"height":        func(q *ledgerv1.QuorumCheckpoint) { q.Checkpoint.Height-- },
	}
	for name, f := range alter {
		c := proto.Clone(qc).(*ledgerv1.QuorumCheckpoint)
		f(c)
		if err := trust.VerifyQuorumCheckpoint(c, testChain, anchor.Validators); err == nil {
			t.Errorf("quorum checkpoint with another %s verified", name)
		}
	}
	if err := trust.VerifyQuorumCheckpoint(qc, testChain, anchor.Validators[1:]); err == nil {
		t.Error("quorum checkpoint verified against another validator set")
	}
	for _, r := range reqs {
		rec, err := s3.Request(ctx, f.Key(r.ID))
		if err != nil || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN {
			t.Fatalf("%s on node 3: %v %v", r.ID, rec, err)
		}
	}
	// The invalid proof is in nobody's log.
	for i := uint64(0); i < wantSize; i++ {
		raw, _ := s3.Tx(i)
		if bytes.Equal(raw, badProof) {
			t.Fatalf("the invalid proof was logged at %d", i)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
