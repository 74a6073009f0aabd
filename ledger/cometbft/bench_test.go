package cometbft

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	cfg "github.com/cometbft/cometbft/config"

	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// BenchmarkTestnet4 runs a 4-validator testnet in this process with
// CometBFT's default block timing (timeout_commit 1 s; override with
// VEIL_BENCH_TIMEOUT_COMMIT, e.g. 300ms), submits b.N proof transactions
// from 1000 concurrent clients (VEIL_BENCH_CLIENTS) spread over the four
// nodes, each waiting for its transaction to commit, and reports
// throughput and commit latency (submit to committed on the receiving
// node). Every node verifies every proof with a verifier that costs what
// a Groth16 verification does (VEIL_BENCH_VERIFY, default 1.2ms of CPU).
// Run with -benchtime 400x or so: each run sets up its own testnet.
func BenchmarkTestnet4(b *testing.B) {
	commit := time.Second
	if s := os.Getenv("VEIL_BENCH_TIMEOUT_COMMIT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		commit = d
	}
	cost := 1200 * time.Microsecond
	if s := os.Getenv("VEIL_BENCH_VERIFY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		cost = d
	}
	clients := 1000
	if s := os.Getenv("VEIL_BENCH_CLIENTS"); s != "" {
		if _, err := fmt.Sscan(s, &clients); err != nil {
			b.Fatal(err)
		}
	}
	verifier := ledgertest.CostlyVerifier{Work: calibrate(cost)}
	dir := b.TempDir()
	ports := freePorts(&testing.T{}, 16)
	var pp [][4]int
	for i := 0; i < 4; i++ {
		pp = append(pp, [4]int{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]})
	}
	if err := WriteTestnet(TestnetOptions{Dir: dir, Nodes: 4, ChainID: testChain, Ports: pp, TimeoutCommit: commit}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var nodes []*Node
	for i := 0; i < 4; i++ {
		n, err := StartNode(ctx, NodeDir(dir, i), NodeOptions{Verifier: verifier, Configure: func(c *cfg.Config) {
			c.Mempool.Size = 20000
		}})
		if err != nil {
			b.Fatal(err)
		}
		defer n.Stop()
		nodes = append(nodes, n)
	}
	for ready := false; !ready; {
		time.Sleep(100 * time.Millisecond)
		ready = true
		for _, n := range nodes {
			ready = ready && n.Height() >= 2
		}
	}
	f := ledgertest.NewFixture(testChain, "bench")
	reqs := make([]*ledgertest.Request, b.N)
	for i := range reqs {
		reqs[i] = f.NewRequest("m", fmt.Sprintf("r%d", i), 4)
	}
	// submit sends txs from the clients round-robin over the nodes and
	// returns each transaction's commit latency.
	submit := func(txs [][]byte) []time.Duration {
		lat := make([]time.Duration, len(txs))
		work := make(chan int, len(txs))
		for i := range txs {
			work <- i
		}
		close(work)
		var wg sync.WaitGroup
		var once sync.Once
		for w := 0; w < clients; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					start := time.Now()
					sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
					_, err := nodes[i%4].Submit(sctx, txs[i])
					cancel()
					lat[i] = time.Since(start)
					if err != nil {
						once.Do(func() { b.Errorf("tx %d: %v", i, err) })
					}
				}
			}()
		}
		wg.Wait()
		// Let every node commit before the next phase (CheckTx reads the
		// committed state).
		var top uint64
		for _, n := range nodes {
			h, _, _, _ := n.Head()
			top = max(top, h)
		}
		for _, n := range nodes {
			for {
				if h, _, _, _ := n.Head(); h >= top {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return lat
	}
	submit([][]byte{f.Register("m")})
	var receipts, reveals, proofs [][]byte
	for _, r := range reqs {
		receipts = append(receipts, f.Receipt(r))
		reveals = append(reveals, f.Reveal(r))
		proofs = append(proofs, f.Proof([]*ledgertest.Request{r}, false))
	}
	submit(receipts)
	submit(reveals)
	h0 := nodes[0].Height()
	b.ResetTimer()
	start := time.Now()
	lat := submit(proofs)
	el := time.Since(start)
	b.StopTimer()
	blocks := nodes[0].Height() - h0
	latMS := make([]float64, len(lat))
	for i, d := range lat {
		latMS[i] = stats.Milliseconds(d)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "tx/s")
	b.ReportMetric(stats.Quantile(latMS, 0.5), "p50-commit-ms")
	b.ReportMetric(stats.Quantile(latMS, 0.99), "p99-commit-ms")
	b.ReportMetric(float64(blocks), "blocks")
	for i, n := range nodes {
		if _, size, _, _ := n.Head(); size != uint64(1+3*b.N) {
			b.Fatalf("node %d log size %d, want %d", i, size, 1+3*b.N)
		}
	}
}

func calibrate(d time.Duration) int {
	const probe = 20000
	v := ledgertest.CostlyVerifier{Work: probe}
	start := time.Now()
	_ = v.VerifyChallengeProof(nil, ledger.Statement{}, nil)
	per := time.Since(start) / probe
	return int(d / per)
}
