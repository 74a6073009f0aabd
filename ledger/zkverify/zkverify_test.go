package zkverify_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

const chain = "zk-ledger-test"

// tinyModel has the default model's layer kinds (dense, square, dense) at
// a size whose Groth16 setup takes seconds.
func tinyModel(seed uint64) *model.Model { return testmodels.Tiny(seed) }

// realSetup runs zk's ceremony-of-one setup for a batch of 2 challenges
// (one request with k = 3 blocks), proves the model's outputs on two
// challenge images and returns what a server would register and submit.
type realProof struct {
	spec       []byte
	vk         []byte
	commitment []byte
	images     [][]byte
	outputs    [][]int64
	proof      []byte
}

var (
	setupOnce sync.Once
	setupRes  *realProof
	setupErr  error
)

func setup(tb testing.TB) *realProof {
	tb.Helper()
	setupOnce.Do(func() { setupRes, setupErr = doSetup() })
	if setupErr != nil {
		tb.Fatal(setupErr)
	}
	return setupRes
}

func doSetup() (*realProof, error) {
	ctx := context.Background()
	m := tinyModel(7)
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	pk, _, err := mpcsetup.SetupOfOne(ctx, spec, 2, "", nil)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	return proveWith(ctx, m, spec, pk)
}

// proveWith proves the model's outputs on two challenge images with pk.
func proveWith(ctx context.Context, m *model.Model, spec *circuits.Spec, pk *zk.ProvingKey) (*realProof, error) {
	prover, err := zk.NewProver(m, zk.Salt{31: 9}, pk)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	imgs := make([]pixels.Image, 2)
	for k := range imgs {
		for i := range imgs[k] {
			if rng.IntN(4) == 0 {
				imgs[k][i] = uint8(rng.IntN(256))
			}
		}
	}
	p, err := prover.Prove(ctx, imgs)
	if err != nil {
		return nil, fmt.Errorf("prove: %w", err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	vkb, err := pk.VK.MarshalBinary()
	if err != nil {
		return nil, err
	}
	c := prover.Commitment()
	r := &realProof{spec: spec.Canonical(), vk: vkb, commitment: c[:], outputs: p.Outputs, proof: pb}
	for i := range imgs {
		r.images = append(r.images, imgs[i][:])
	}
	return r, nil
}

// client is one request's client side.
func request(f *ledgertest.Fixture, rp *realProof, id string) *ledgertest.Request {
	return &ledgertest.Request{ID: id, ModelID: "tiny", Challenges: rp.images, Positions: []uint32{0, 2}, Salt: []byte("salt " + id)}
}

func keys(f *ledgertest.Fixture, ids []string) [][]byte {
	var out [][]byte
	for _, id := range ids {
		out = append(out, f.KeyOf("tiny", id))
	}
	return out
}

func proofTx(f *ledgertest.Fixture, rp *realProof, ids []string, proof []byte) []byte {
	var flat []int64
	for range ids {
		for _, row := range rp.outputs {
			flat = append(flat, row...)
		}
	}
	return f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: &ledgerv1.ChallengeProof{
		ModelId: "tiny", RequestKeys: keys(f, ids), Outputs: flat, Proof: proof}}})
}

func registerSpec(f *ledgertest.Fixture, rp *realProof, spec, vk []byte) []byte {
	raw, err := ledger.Signer{ChainID: f.ChainID, Key: f.Owner}.RegisterModel(&ledgerv1.RegisterModel{
		ModelId: "tiny", Architecture: "tiny 784-4-10", Commitment: rp.commitment, VerifyingKey: vk,
		OutputsPerChallenge: 10, Spec: spec, ProofBatch: 2}, f.Server)
	if err != nil {
		panic(err)
	}
	return raw
}

func register(f *ledgertest.Fixture, rp *realProof, vk []byte) []byte {
	return registerSpec(f, rp, rp.spec, vk)
}

// TestRealGroth16ProofThroughLedger: a real Groth16 proof made by zk is
// verified by the ledger against the registered key and commitment and the
// digest it computes from the revealed images (accepted); the same proof
// with one byte changed, or claiming other outputs, is rejected.
func TestRealGroth16ProofThroughLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Groth16 setup")
	}
	start := time.Now()
	rp := setup(t)
	t.Logf("setup and one proof: %v, verifying key %d bytes, proof file %d bytes", time.Since(start), len(rp.vk), len(rp.proof))
	ctx := context.Background()
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: zkverify.New(), SigningKey: ledgertest.Key("node")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	f := ledgertest.NewFixture(chain, "zk")

	// A registration with a key zk cannot decode is refused, and so is a
	// real key registered with a spec of another circuit (here: the same
	// layers with another tolerance, so another circuit id).
	_, err = n.Submit(ctx, register(f, rp, []byte("not a key")))
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_SPEC_MISMATCH {
		t.Fatalf("bad key registration: %v", err)
	}
	other, err := circuits.ParseSpec(rp.spec)
	if err != nil {
		t.Fatal(err)
	}
	other.Tolerance++
	_, err = n.Submit(ctx, registerSpec(f, rp, other.Canonical(), rp.vk))
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_SPEC_MISMATCH {
		t.Fatalf("key of another spec's circuit: %v, want SPEC_MISMATCH", err)
	}
	t.Logf("key for another circuit refused: %s", rj.Reason)
	r1, r2, r3 := request(f, rp, "r1"), request(f, rp, "r2"), request(f, rp, "r3")
	rs, err := n.SubmitBatch(ctx, [][]byte{register(f, rp, rp.vk), f.Receipt(r1), f.Receipt(r2), f.Receipt(r3), f.Reveal(r1), f.Reveal(r2), f.Reveal(r3)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Code != ledgerv1.Code_CODE_OK {
			t.Fatalf("setup tx %d: %v", i, r)
		}
	}

	// Tampered: one byte of the Groth16 proof (the last bytes of the file).
	bad := append([]byte(nil), rp.proof...)
	bad[len(bad)-10] ^= 0x01
	_, err = n.Submit(ctx, proofTx(f, rp, []string{"r1"}, bad))
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_PROOF_INVALID {
		t.Fatalf("tampered proof: %v, want PROOF_INVALID", err)
	}
	t.Logf("tampered proof rejected: %s", rj.Reason)
	// Honest proof, other outputs claimed: rejected.
	honestR2 := proofTx(f, rp, []string{"r2"}, rp.proof)
	wrongOutputs := func() []byte {
		var flat []int64
		for _, row := range rp.outputs {
			flat = append(flat, row...)
		}
		flat[3]++
		return f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: &ledgerv1.ChallengeProof{
			ModelId: "tiny", RequestKeys: keys(f, []string{"r2"}), Outputs: flat, Proof: rp.proof}}})
	}()
	_, err = n.Submit(ctx, wrongOutputs)
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_PROOF_INVALID {
		t.Fatalf("proof with other outputs: %v, want PROOF_INVALID", err)
	}
	// The honest proof is accepted.
	resp, err := n.Submit(ctx, proofTx(f, rp, []string{"r1"}, rp.proof))
	if err != nil {
		t.Fatalf("real proof rejected: %v", err)
	}
	if _, err := n.Submit(ctx, honestR2); err != nil {
		t.Fatalf("real proof for r2 rejected: %v", err)
	}
	rec, err := n.Request(ctx, f.KeyOf("tiny", "r1"))
	if err != nil || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN || rec.ProofIndex != resp.Index || rec.Outputs[0] != rp.outputs[0][0] {
		t.Fatalf("r1 after proof: %v %v", rec, err)
	}
	// Two requests (four challenges) against a key that proves two: zk
	// refuses the statement.
	_, err = n.Submit(ctx, proofTx(f, rp, []string{"r3", "r2"}, rp.proof))
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_ALREADY_PROVEN {
		t.Fatalf("proof over a proven request: %v", err)
	}
	// A request with more challenges than one proof covers is refused at
	// its receipt: the server could never prove it.
	four := &ledgertest.Request{ID: "r4", ModelID: "tiny", Challenges: append(append([][]byte{}, rp.images...), rp.images...), Positions: []uint32{0, 1, 2, 3}, Salt: []byte("s4")}
	_, err = n.Submit(ctx, f.Receipt(four))
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_TOO_MANY_CHALLENGES {
		t.Fatalf("receipt with 4 challenges for a batch of 2: %v, want TOO_MANY_CHALLENGES", err)
	}
}

// BenchmarkEmbeddedRealGroth16 measures accepted proof-carrying
// transactions per second through the embedded node with real Groth16
// verification (zk, tiny model, 2 challenges per proof: 22 public inputs;
// verification cost grows little with the public inputs). Every request
// reveals the same two images so one real proof serves them all; the
// ledger's cache is per transaction, so each transaction is verified.
func BenchmarkEmbeddedRealGroth16(b *testing.B) {
	rp := setup(b)
	ctx := context.Background()
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(b.TempDir(), "l.db"), ChainID: chain, Verifier: zkverify.New(), SigningKey: ledgertest.Key("node")})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	f := ledgertest.NewFixture(chain, "zk")
	txs := [][]byte{register(f, rp, rp.vk)}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%d", i)
		r := request(f, rp, ids[i])
		txs = append(txs, f.Receipt(r), f.Reveal(r))
	}
	for len(txs) > 0 {
		k := min(1000, len(txs))
		rs, err := n.SubmitBatch(ctx, txs[:k])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Code != ledgerv1.Code_CODE_OK {
				b.Fatal(r)
			}
		}
		txs = txs[k:]
	}
	proofs := make(chan []byte, b.N)
	for _, id := range ids {
		proofs <- proofTx(f, rp, []string{id}, rp.proof)
	}
	close(proofs)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range proofs {
				if _, err := n.Submit(ctx, p); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
	// CPU per transaction says what two idle cores would sustain, whatever
	// else the machine was running.
	cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu*1000, "cpu-ms/tx")
	b.ReportMetric(2/cpu, "tx/s-on-2-idle-cores")
}

// BenchmarkEmbeddedRealGroth16WithPayments is BenchmarkEmbeddedRealGroth16
// on a chain with the market (MarketDefaults: a fee per transaction and per
// byte, an offer with stake, priced receipts that lock an escrow and
// reserve collateral): the timed part is each request's proof (verified with
// real Groth16, opening its dispute window) and the client's accepting
// verdict that pays the provider at once. Reported as requests per second,
// each request being one proof and one payment.
func BenchmarkEmbeddedRealGroth16WithPayments(b *testing.B) {
	rp := setup(b)
	ctx := context.Background()
	f := ledgertest.NewFixture(chain, "zkpay")
	m := ledger.MarketDefaults()
	price := ledger.Unit / 100
	m.Genesis = []ledger.Allocation{
		{Account: f.Owner.Public().(ed25519.PublicKey), Amount: 10 * ledger.Unit},
		{Account: f.Server.Public().(ed25519.PublicKey), Amount: uint64(b.N+20) * 2 * ledger.Unit},
		{Account: f.Client.Public().(ed25519.PublicKey), Amount: uint64(b.N+20) * ledger.Unit},
	}
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(b.TempDir(), "l.db"), ChainID: chain, Verifier: zkverify.New(), SigningKey: ledgertest.Key("node"),
		Params: ledger.Params{ProofDeadlineBlocks: 1 << 20, Market: m}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	txs := [][]byte{register(f, rp, rp.vk), f.Offer("tiny", uint64(price), uint64(b.N+10)*ledger.Unit, m.MinUnbondingDelayBlocks)}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%d", i)
		r := request(f, rp, ids[i])
		r.Price = uint64(price)
		f.NewRequest("tiny", ids[i], 3) // so that Verdict finds the model
		txs = append(txs, f.Receipt(r), f.Reveal(r))
	}
	for len(txs) > 0 {
		k := min(1000, len(txs))
		rs, err := n.SubmitBatch(ctx, txs[:k])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Code != ledgerv1.Code_CODE_OK {
				b.Fatal(r)
			}
		}
		txs = txs[k:]
	}
	type work struct{ proof, verdict []byte }
	jobs := make(chan work, b.N)
	for _, id := range ids {
		jobs <- work{proofTx(f, rp, []string{id}, rp.proof), f.Verdict(id, true)}
	}
	close(jobs)
	pool0, _ := n.Supply(ctx)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if _, err := n.Submit(ctx, j.proof); err != nil {
					b.Error(err)
					return
				}
				if _, err := n.Submit(ctx, j.verdict); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el, "requests/s")
	cpu := (cpuTime() - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu*1000, "cpu-ms/request")
	b.ReportMetric(2/cpu, "requests/s-on-2-idle-cores")
	o, err := n.Offer(ctx, "tiny")
	if err != nil || o.Paid != uint64(b.N) || o.Reserved != 0 {
		b.Fatalf("after the run the offer says %+v (%v): not every request was paid", o, err)
	}
	if pool, _ := n.Supply(ctx); pool.GetPool() <= pool0.GetPool() {
		b.Fatal("no fee reached the pool")
	}
	if _, err := n.AuditSupply(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkZKVerify is one real verification through the adapter, for
// reference.
func BenchmarkZKVerify(b *testing.B) {
	rp := setup(b)
	v := zkverify.New()
	d, _ := v.ChallengeDigest(rp.images)
	st := ledger.Statement{Commitment: rp.commitment, ChallengeDigest: d, Outputs: rp.outputs}
	if err := v.VerifyChallengeProof(rp.vk, st, rp.proof); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := v.VerifyChallengeProof(rp.vk, st, rp.proof); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
