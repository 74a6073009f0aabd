package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/zkverify"
)

const benchChain = "veil-bench"

func (r *runner) costLedger() float64 {
	return 1 + float64(r.s.Ledger.Requests)*0.01
}

// runLedger measures accepted transactions per second through the
// embedded single-node ledger (parallel pre-verification, one fsync per
// block), with the zk stage's real Groth16 proof verified by zkverify for
// every ChallengeProof transaction. Each request is receipted, revealed
// and proven, by Submitters concurrent clients per phase.
func (r *runner) runLedger(ctx context.Context) error {
	art := r.zkArt
	if art == nil {
		return skip("no Groth16 proof to submit: the zk stage did not run")
	}
	s := r.s.Ledger
	dir, err := os.MkdirTemp("", "veil-bench-ledger-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	node, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "ledger.db"), ChainID: benchChain, Verifier: zkverify.New(), SigningKey: ledgertest.Key("bench node")})
	if err != nil {
		return err
	}
	defer node.Close()

	f := ledgertest.NewFixture(benchChain, "bench")
	f.Spec, f.VK, f.Commitment, f.Verifier, f.Batch = art.spec, art.vk, art.commitment[:], zkverify.New(), len(art.images)
	const modelID = "bench-model"
	if _, err := node.Submit(ctx, f.Register(modelID)); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var challenges [][]byte
	var positions []uint32
	var outputs []int64
	for i, img := range art.images {
		challenges = append(challenges, append([]byte(nil), img[:]...))
		positions = append(positions, uint32(i+1))
		outputs = append(outputs, art.outputs[i]...)
	}
	var receipts, reveals, proofs [][]byte
	for i := 0; i < s.Requests; i++ {
		req := &ledgertest.Request{ID: fmt.Sprintf("req-%05d", i), ModelID: modelID, Challenges: challenges, Positions: positions, Salt: []byte(fmt.Sprintf("salt %d", i))}
		receipts = append(receipts, f.Receipt(req))
		reveals = append(reveals, f.Reveal(req))
		proofs = append(proofs, f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: &ledgerv1.ChallengeProof{
			ModelId: modelID, RequestKeys: [][]byte{f.KeyOf(modelID, req.ID)}, Outputs: outputs, Proof: art.proofFile,
		}}}))
	}
	for _, phase := range []struct {
		name string
		txs  [][]byte
	}{{"receipt", receipts}, {"reveal", reveals}, {"challenge_proof", proofs}} {
		tp, err := submitAll(ctx, node, phase.txs, s.Submitters)
		if err != nil {
			return fmt.Errorf("%s: %w", phase.name, err)
		}
		tp.Name = phase.name
		tp.Params.Model = art.modelName
		tp.Params.Batch = len(art.images)
		r.res.Throughput = append(r.res.Throughput, tp)
		r.tick(float64(s.Requests)*0.01/3, "ledger "+phase.name)
	}
	h, size, _, err := node.Head()
	if err != nil {
		return err
	}
	if want := uint64(1 + 3*s.Requests); size != want {
		return fmt.Errorf("log holds %d transactions, want %d", size, want)
	}
	r.addCount(StageLedger, "blocks", Params{Clients: s.Submitters}, int(h))
	return nil
}

// submitAll submits every transaction with n concurrent submitters, each
// waiting for its transaction's block to be durable, and requires every
// one to be accepted.
func submitAll(ctx context.Context, node *embedded.Node, txs [][]byte, n int) (Throughput, error) {
	next := make(chan []byte, len(txs))
	for _, tx := range txs {
		next <- tx
	}
	close(next)
	var mu sync.Mutex
	var lat []float64
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tx := range next {
				t0 := time.Now()
				_, err := node.Submit(ctx, tx)
				d := ms(time.Since(t0))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return Throughput{}, firstErr
	}
	if len(lat) == 0 {
		return Throughput{}, errors.New("nothing submitted")
	}
	return Throughput{
		Stage: StageLedger, Params: Params{Clients: n}, PerSecond: float64(len(lat)) / el, Unit: "tx/s",
		Operations: len(lat), Seconds: el, Latency: Summarize(lat),
	}, nil
}
