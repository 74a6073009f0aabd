package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// Go benchmarks of every stage, for `go test -bench`:
//
//	go test -run '^$' -bench . -benchtime 10x ./bench/
//
// LogN and hidden size come from $VEIL_BENCH_LOGN (default 13) and
// $VEIL_BENCH_HIDDEN (default 128, the default model); proofs use the tiny
// circuit unless $VEIL_BENCH_ZK_MODEL=default (whose setup takes minutes).
// `veil bench` runs the whole grid with medians and p95; these report Go's
// mean per operation, plus sizes and per-stage times as extra metrics.

type benchFixture struct {
	r   *runner
	m   *model.Model
	fix *he.LocalSession
}

// fixOnce caches fixtures across benchmark runs of one test binary.
var fixOnce sync.Map // key string -> *benchFixture

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v == 0 {
		return def
	}
	return v
}

// heBench compiles the network and makes keys once per (LogN, hidden,
// workers).
func heBench(b *testing.B, workers int) *benchFixture {
	b.Helper()
	logN, hidden := envInt("VEIL_BENCH_LOGN", 13), envInt("VEIL_BENCH_HIDDEN", DefaultHidden)
	key := fmt.Sprint(logN, hidden, workers)
	if f, ok := fixOnce.Load(key); ok {
		return f.(*benchFixture)
	}
	r := newTestRunner(b)
	m, err := r.modelFor(hidden)
	if err != nil {
		b.Fatal(err)
	}
	p, settings := he.DefaultParametersLiteral, he.DefaultEvaluationSettings
	p.LogN, settings.Workers = logN, workers
	c, err := he.NewParameters(p)
	if err != nil {
		b.Fatal(err)
	}
	net, err := c.Compile(m, settings)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := he.NewLocalSession(net)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{r: r, m: m, fix: sess}
	fixOnce.Store(key, f)
	return f
}

func (f *benchFixture) wire(b *testing.B) []byte {
	layout := f.fix.Network.Layout()
	ct, err := f.fix.SecretKey.Encrypt(layout, f.r.images(0, layout.Blocks))
	if err != nil {
		b.Fatal(err)
	}
	w, _ := ct.MarshalBinary()
	return w
}

func BenchmarkKeyGen(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	gal := f.fix.Network.GaloisElements()
	for b.Loop() {
		sk := f.fix.Network.Parameters().GenSecretKey()
		keys, err := sk.GenEvaluationKeys(gal)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := keys.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.fix.Bundle)), "key-bytes")
	b.ReportMetric(float64(len(gal)), "rotation-keys")
}

func BenchmarkLoadKeys(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	for b.Loop() {
		if _, err := f.fix.Network.Parameters().UnmarshalEvaluationKeys(f.fix.Bundle, f.fix.Network.GaloisElements()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	layout := f.fix.Network.Layout()
	for _, n := range []int{1, layout.Blocks} {
		b.Run(fmt.Sprintf("images=%d", n), func(b *testing.B) {
			imgs := f.r.images(0, n)
			var size int
			for b.Loop() {
				ct, err := f.fix.SecretKey.Encrypt(layout, imgs)
				if err != nil {
					b.Fatal(err)
				}
				w, err := ct.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				size = len(w)
			}
			b.ReportMetric(float64(size), "ciphertext-bytes")
		})
	}
}

// BenchmarkEvaluate reports each stage's mean time as a metric.
func BenchmarkEvaluate(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			f := heBench(b, w)
			wire := f.wire(b)
			in, err := f.fix.Network.Parameters().UnmarshalCiphertext(wire)
			if err != nil {
				b.Fatal(err)
			}
			total := map[string]time.Duration{}
			n := 0
			for b.Loop() {
				if _, err := f.fix.Network.EvaluateTraced(context.Background(), in, f.fix.Keys, func(s string, d time.Duration) { total[s] += d }); err != nil {
					b.Fatal(err)
				}
				n++
			}
			for _, s := range heStages {
				b.ReportMetric(stats.Milliseconds(total[s])/float64(n), s+"-ms")
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	in, _ := f.fix.Network.Parameters().UnmarshalCiphertext(f.wire(b))
	out, err := f.fix.Network.Evaluate(context.Background(), in, f.fix.Keys)
	if err != nil {
		b.Fatal(err)
	}
	ow, _ := out.MarshalBinary()
	for b.Loop() {
		back, err := f.fix.Network.Parameters().UnmarshalCiphertext(ow)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.fix.SecretKey.Decrypt(f.fix.Network.Layout(), back); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ow)), "ciphertext-bytes")
}

// BenchmarkSerialization is decoding an uploaded ciphertext on the server.
func BenchmarkSerialization(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	wire := f.wire(b)
	for b.Loop() {
		if _, err := f.fix.Network.Parameters().UnmarshalCiphertext(wire); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(wire)), "input-bytes")
	b.ReportMetric(float64(len(f.fix.Bundle)), "key-bytes")
}

func BenchmarkPlaintextForward(b *testing.B) {
	r := newTestRunner(b)
	img := r.images(0, 1)[0]
	b.Run("fixed", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.def.Forward(img); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("float", func(b *testing.B) {
		fl := r.def.Dequantize()
		for b.Loop() {
			_ = fl.Forward(model.PixelsToInput(img))
		}
	})
}

// BenchmarkGRPCRoundTrip is one Infer RPC (8 images) over loopback.
func BenchmarkGRPCRoundTrip(b *testing.B) {
	f := heBench(b, he.DefaultEvaluationSettings.Workers)
	if f.m != f.r.def || f.fix.Network.Parameters().Literal().LogN != he.DefaultParametersLiteral.LogN {
		b.Skip("the service runs the default model and parameters")
	}
	lb, err := f.r.startServer(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer lb.stop()
	conn, err := client.Dial(lb.addr, client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	s, err := conn.OpenSession(context.Background(), f.r.def.Name, f.fix.Bundle)
	if err != nil {
		b.Fatal(err)
	}
	wire := f.wire(b)
	for b.Loop() {
		if _, err := conn.Infer(context.Background(), s.GetSessionId(), wire); err != nil {
			b.Fatal(err)
		}
	}
}

// zkBench makes keys for a batch once (tiny circuit unless
// VEIL_BENCH_ZK_MODEL=default).
type zkBenchFix struct {
	pk     *zk.ProvingKey
	prover *zk.Prover
	proof  *zk.Proof
	file   []byte
}

var zkFixes sync.Map

func zkBench(b *testing.B, batch int) *zkBenchFix {
	b.Helper()
	key := fmt.Sprint(os.Getenv("VEIL_BENCH_ZK_MODEL"), batch)
	if f, ok := zkFixes.Load(key); ok {
		return f.(*zkBenchFix)
	}
	r := newTestRunner(b)
	r.s.ZK.Model = "tiny"
	if os.Getenv("VEIL_BENCH_ZK_MODEL") == "default" {
		r.s.ZK.Model = "default"
	}
	m, err := r.zkModel()
	if err != nil {
		b.Fatal(err)
	}
	spec, err := circuits.SpecOf(m)
	if err != nil {
		b.Fatal(err)
	}
	pk, _, err := mpcsetup.SetupOfOne(context.Background(), spec, batch, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	prover, err := zk.NewProver(m, benchSalt, pk)
	if err != nil {
		b.Fatal(err)
	}
	proof, err := prover.Prove(context.Background(), r.imageArrays(0, batch))
	if err != nil {
		b.Fatal(err)
	}
	file, _ := proof.MarshalBinary()
	f := &zkBenchFix{pk: pk, prover: prover, proof: proof, file: file}
	zkFixes.Store(key, f)
	return f
}

func BenchmarkProve(b *testing.B) {
	r := newTestRunner(b)
	for _, batch := range []int{1, 3} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := zkBench(b, batch)
			imgs := r.imageArrays(0, batch)
			for b.Loop() {
				if _, err := f.prover.Prove(context.Background(), imgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(f.pk.Constraints()), "constraints")
			b.ReportMetric(float64(len(f.proof.Groth16)), "proof-bytes")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	f := zkBench(b, 1)
	for b.Loop() {
		if err := zk.Verify(f.pk.VK, f.proof.Statement, f.file); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerProofTx is accepted ChallengeProof transactions per
// second through the embedded ledger, each verified with real Groth16.
func BenchmarkLedgerProofTx(b *testing.B) {
	zf := zkBench(b, 1)
	r := newTestRunner(b)
	vkb, _ := zf.pk.VK.MarshalBinary()
	r.zkArt = &zkArtifact{modelName: "bench", vk: vkb, commitment: zf.prover.Commitment(), images: r.imageArrays(0, 1), outputs: zf.proof.Outputs, proofFile: zf.file}
	r.s.Ledger = LedgerSuite{Requests: b.N, Submitters: 16}
	// runLedger submits every phase; the metric is the proof phase's rate.
	b.ResetTimer()
	if err := r.runLedger(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, t := range r.res.Throughput {
		if t.Name == "challenge_proof" {
			b.ReportMetric(t.PerSecond, "proof-tx/s")
		}
		if t.Name == "receipt" {
			b.ReportMetric(t.PerSecond, "receipt-tx/s")
		}
	}
}
