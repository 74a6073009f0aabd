package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
)

const chain = "embedded-test"

func open(t testing.TB, path string, v ledger.ProofVerifier) *embedded.Node {
	t.Helper()
	n, err := embedded.Open(embedded.Config{Path: path, ChainID: chain, Verifier: v, SigningKey: ledgertest.Key("node")})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConcurrentSubmitAndRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	n := open(t, path, ledgertest.FakeVerifier{})
	f := ledgertest.NewFixture(chain, "a")
	if _, err := n.Submit(ctx, f.Register("m")); err != nil {
		t.Fatal(err)
	}
	// 40 clients, each running its request through the whole protocol
	// concurrently with the others.
	const clients = 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.NewRequest("m", fmt.Sprintf("req-%d", i), 3)
			for _, tx := range [][]byte{f.Receipt(r), f.Reveal(r), f.Proof([]*ledgertest.Request{r}, false), f.Verdict(r.ID, true)} {
				if _, err := n.Submit(ctx, tx); err != nil {
					errs <- fmt.Errorf("%s: %w", r.ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A rejection comes back as a *ledger.Rejection with its code.
	r0 := f.NewRequest("m", "req-0", 3)
	_, err := n.Submit(ctx, f.Proof([]*ledgertest.Request{r0}, true))
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_ALREADY_PROVEN {
		t.Fatalf("second proof: %v, want ALREADY_PROVEN", err)
	}
	h, size, app, _ := n.Head()
	if size != 1+4*clients {
		t.Fatalf("log size %d, want %d", size, 1+4*clients)
	}
	if h >= size {
		t.Logf("note: %d blocks for %d transactions (no batching happened)", h, size)
	}
	n.Close()
	if _, err := n.Submit(ctx, f.Register("x")); !errors.Is(err, embedded.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}

	n = open(t, path, ledgertest.FakeVerifier{})
	defer n.Close()
	h2, size2, app2, _ := n.Head()
	if h2 != h || size2 != size || string(app2) != string(app) {
		t.Fatalf("after restart: height %d size %d, want %d %d", h2, size2, h, size)
	}
	for i := 0; i < clients; i++ {
		rec, err := n.Request(ctx, f.Key(fmt.Sprintf("req-%d", i)))
		if err != nil || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN || !rec.HasVerdict {
			t.Fatalf("req-%d after restart: %v %v", i, rec, err)
		}
		e, err := n.Entry(ctx, rec.ProofIndex)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyInclusion(e, n.PublicKey()); err != nil {
			t.Fatalf("inclusion of proof %d: %v", rec.ProofIndex, err)
		}
	}
}

func TestSubmitBatchKeepsOrder(t *testing.T) {
	ctx := context.Background()
	n := open(t, filepath.Join(t.TempDir(), "ledger.db"), ledgertest.FakeVerifier{})
	defer n.Close()
	f := ledgertest.NewFixture(chain, "a")
	r := f.NewRequest("m", "r", 4)
	// The proof's statement depends on the reveal in the same batch, so it
	// cannot be pre-verified and is verified during apply.
	rs, err := n.SubmitBatch(ctx, [][]byte{f.Register("m"), f.Receipt(r), f.Reveal(r), f.Proof([]*ledgertest.Request{r}, true), f.Proof([]*ledgertest.Request{r}, false)})
	if err != nil {
		t.Fatal(err)
	}
	want := []ledgerv1.Code{0, 0, 0, ledgerv1.Code_CODE_PROOF_INVALID, 0}
	for i, c := range want {
		if rs[i].Code != c {
			t.Fatalf("tx %d: %v %s, want %v", i, rs[i].Code, rs[i].Reason, c)
		}
	}
	if rs[4].Index != 3 || rs[4].Height != rs[0].Height {
		t.Fatalf("proof at index %d height %d; want index 3 in the same block as the registration (%d)", rs[4].Index, rs[4].Height, rs[0].Height)
	}
}

// BenchmarkEmbeddedProofTxs measures accepted ChallengeProof transactions
// per second, each verified by a verifier that costs about as much CPU as
// a Groth16 verification (calibrated to VEIL_BENCH_VERIFY_MS, default 1.2).
// 64 concurrent submitters; both cores verify.
func BenchmarkEmbeddedProofTxs(b *testing.B) {
	work := calibrate(1200 * time.Microsecond)
	benchProofs(b, ledgertest.CostlyVerifier{Work: work}, 64)
}

func calibrate(d time.Duration) int {
	const probe = 20000
	v := ledgertest.CostlyVerifier{Work: probe}
	start := time.Now()
	_ = v.VerifyChallengeProof(nil, ledger.Statement{}, nil)
	per := time.Since(start) / probe
	return int(d / per)
}

func benchProofs(b *testing.B, v ledger.ProofVerifier, submitters int) {
	ctx := context.Background()
	n := open(b, filepath.Join(b.TempDir(), "ledger.db"), v)
	defer n.Close()
	f := ledgertest.NewFixture(chain, "bench")
	var setup [][]byte
	setup = append(setup, f.Register("m"))
	reqs := make([]*ledgertest.Request, b.N)
	for i := range reqs {
		reqs[i] = f.NewRequest("m", fmt.Sprintf("r%d", i), 4)
		setup = append(setup, f.Receipt(reqs[i]), f.Reveal(reqs[i]))
	}
	for len(setup) > 0 {
		k := min(len(setup), 1000)
		if _, err := n.SubmitBatch(ctx, setup[:k]); err != nil {
			b.Fatal(err)
		}
		setup = setup[k:]
	}
	proofs := make(chan []byte, b.N)
	for _, r := range reqs {
		proofs <- f.Proof([]*ledgertest.Request{r}, false)
	}
	close(proofs)
	h0, _, _, _ := n.Head()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	var failed sync.Once
	for w := 0; w < submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range proofs {
				if _, err := n.Submit(ctx, p); err != nil {
					failed.Do(func() { b.Error(err) })
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	h1, _, _, _ := n.Head()
	b.ReportMetric(float64(b.N)/el.Seconds(), "tx/s")
	cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu*1000, "cpu-ms/tx")
	b.ReportMetric(float64(b.N)/float64(max(1, h1-h0)), "tx/block")
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// With a block interval, heights measure time: submitting many
// transactions one after another (each waiting for its block) advances the
// height by no more than the intervals that passed, so nobody can pump the
// height past a deadline early.
func TestHeightsFollowTheClockNotTheSubmissions(t *testing.T) {
	const interval = 30 * time.Millisecond
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node"), BlockInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	f := ledgertest.NewFixture(chain, "pump")
	if _, err := n.Submit(ctx, f.Register("m")); err != nil {
		t.Fatal(err)
	}
	h0, _, _, _ := n.Head()
	start := time.Now()
	const k = 20
	for i := 0; i < k; i++ {
		if _, err := n.Submit(ctx, f.Receipt(f.NewRequest("m", fmt.Sprintf("p%d", i), 2))); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	h1, _, _, _ := n.Head()
	if max := uint64(elapsed/interval) + 2; h1-h0 > max {
		t.Fatalf("%d submissions advanced the height by %d in %v (at most %d intervals)", k, h1-h0, elapsed, max)
	}
	// Concurrent submissions share a block.
	h1, _, _, _ = n.Head()
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		tx := f.Receipt(f.NewRequest("m", fmt.Sprintf("q%d", i), 2)) // the fixture is not safe for concurrent use
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.Submit(ctx, tx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	h2, _, _, _ := n.Head()
	t.Logf("sequential: +%d heights in %v; %d concurrent submissions: +%d", h1-h0, elapsed, k, h2-h1)
}
