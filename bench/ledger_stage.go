package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/zkverify"
)

const benchChain = "veil-bench"

// benchKey derives the benchmark's ed25519 keys from labels, so that runs
// are reproducible.
func benchKey(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("veil bench key " + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

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
	node, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "ledger.db"), ChainID: benchChain, Verifier: zkverify.New(), SigningKey: benchKey("node")})
	if err != nil {
		return err
	}
	defer node.Close()

	const modelID = "bench-model"
	owner := ledger.Signer{ChainID: benchChain, Key: benchKey("owner")}
	server := ledger.Signer{ChainID: benchChain, Key: benchKey("server")}
	client := ledger.Signer{ChainID: benchChain, Key: benchKey("client")}
	reg, err := owner.RegisterModel(&ledgerv1.RegisterModel{
		ModelId: modelID, Architecture: art.modelName, Commitment: art.commitment[:], VerifyingKey: art.vk,
		OutputsPerChallenge: 10, Spec: art.spec, ProofBatch: uint32(len(art.images)),
	}, server.Key)
	if err != nil {
		return err
	}
	if _, err := node.Submit(ctx, reg); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var challenges [][]byte
	var positions []uint32
	var outputs []int64
	for i, img := range art.images {
		challenges = append(challenges, append([]byte(nil), img[:]...))
		positions = append(positions, uint32(i+1)) // block 0 holds the real image
		outputs = append(outputs, art.outputs[i]...)
	}
	k := uint32(len(challenges) + 1)
	keys := sha256.Sum256([]byte("evaluation keys"))
	var receipts, reveals, proofs [][]byte
	for i := 0; i < s.Requests; i++ {
		id, salt := fmt.Sprintf("req-%05d", i), []byte(fmt.Sprintf("salt %d", i))
		commitment := ledger.ChallengeCommitment(challenges, positions, salt)
		in := sha256.Sum256([]byte("input ciphertext " + id))
		out := sha256.Sum256([]byte("output ciphertext " + id))
		digest := ledger.ClientRequestDigest(benchChain, modelID, id, keys[:], in[:], commitment[:], k, 0)
		rkey := ledger.RequestKey(modelID, client.Public(), id)
		rc, err1 := server.Receipt(&ledgerv1.InferenceReceipt{
			ModelId: modelID, RequestId: id, KeysDigest: keys[:], InputDigest: in[:], OutputDigest: out[:],
			ChallengeCommitment: commitment[:], NumBlocks: k, ClientKey: client.Public(),
			ClientSignature: ed25519.Sign(client.Key, digest[:]),
		})
		rv, err2 := client.Reveal(&ledgerv1.ChallengeReveal{ModelId: modelID, RequestId: id, Challenges: challenges, Positions: positions, Salt: salt})
		pf, err3 := server.Proof(&ledgerv1.ChallengeProof{ModelId: modelID, RequestKeys: [][]byte{rkey[:]}, Outputs: outputs, Proof: art.proofFile})
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		receipts, reveals, proofs = append(receipts, rc), append(reveals, rv), append(proofs, pf)
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
				d := stats.Milliseconds(time.Since(t0))
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
		Operations: len(lat), Seconds: el, Latency: stats.Summarize(lat),
	}, nil
}
