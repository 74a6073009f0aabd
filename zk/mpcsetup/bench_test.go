package mpcsetup

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// cpuTime is the process's user+system CPU time: with the machine shared,
// CPU seconds are a steadier measure than wall time (on an idle 2-core
// machine, wall ≈ CPU/2 for the parallel parts).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median is stats.Quantile's median (nearest rank) of durations.
func median(d []time.Duration) time.Duration {
	xs := make([]float64, len(d))
	for i, v := range d {
		xs[i] = float64(v)
	}
	return time.Duration(stats.Quantile(xs, 0.5))
}

// BenchmarkDefaultModel runs the full-size pipeline on the default model:
// a ceremony-of-one setup (phase 1 cached across batch sizes that share a
// domain), proving (median of 3) and verification (median of 50), for the
// batch sizes in $VEIL_BENCH_BATCHES (default 3,1,6,12).
//
//	go test -run '^$' -bench DefaultModel -benchtime 1x -timeout 60m ./zk/mpcsetup/
func BenchmarkDefaultModel(b *testing.B) {
	f, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	spec, err := circuits.SpecOf(f.Model)
	if err != nil {
		b.Fatal(err)
	}
	batches := []int{3, 1, 6, 12}
	if s := os.Getenv("VEIL_BENCH_BATCHES"); s != "" {
		batches = nil
		for _, x := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(x)
			batches = append(batches, n)
		}
	}
	data := b.TempDir()
	ctx := context.Background()
	salt := zk.Salt{31: 7}
	for _, batch := range batches {
		b.Run(fmt.Sprintf("B=%d", batch), func(b *testing.B) {
			start := time.Now()
			cpu0 := cpuTime()
			pk, tr, err := SetupOfOne(ctx, spec, batch, data, func(stage string, done, total int) {
				if total == 0 {
					b.Logf("%6.1fs %s", time.Since(start).Seconds(), stage)
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			setup := time.Since(start)
			setupCPU := cpuTime() - cpu0
			prover, err := zk.NewProver(f.Model, salt, pk)
			if err != nil {
				b.Fatal(err)
			}
			imgs := dataset.RandomImages(uint64(batch), batch)
			var proveT, proveCPU []time.Duration
			var pb []byte
			var proof *zk.Proof
			for i := 0; i < 3; i++ {
				t0, c0 := time.Now(), cpuTime()
				proof, err = prover.Prove(ctx, imgs)
				if err != nil {
					b.Fatal(err)
				}
				proveT = append(proveT, time.Since(t0))
				proveCPU = append(proveCPU, cpuTime()-c0)
			}
			pb, _ = proof.MarshalBinary()
			st := proof.Statement
			var verT []time.Duration
			for i := 0; i < 50; i++ {
				t0 := time.Now()
				if err := zk.Verify(pk.VK, st, pb); err != nil {
					b.Fatal(err)
				}
				verT = append(verT, time.Since(t0))
			}
			// Throughput of concurrent verification (the ledger's case).
			const nb = 200
			sts := make([]zk.Statement, nb)
			pbs := make([][]byte, nb)
			for i := range sts {
				sts[i], pbs[i] = st, pb
			}
			t0 := time.Now()
			for i, err := range zk.VerifyBatch(pk.VK, sts, pbs) {
				if err != nil {
					b.Fatalf("batch %d: %v", i, err)
				}
			}
			b.ReportMetric(nb/time.Since(t0).Seconds(), "verify/s")
			b.ReportMetric(float64(pk.Constraints()), "constraints")
			b.ReportMetric(float64(tr.Domain), "domain")
			b.ReportMetric(setup.Seconds(), "setup-s")
			b.ReportMetric(setupCPU.Seconds(), "setup-cpu-s")
			b.ReportMetric(median(proveCPU).Seconds(), "prove-cpu-s")
			b.ReportMetric(median(proveT).Seconds(), "prove-s")
			b.ReportMetric(float64(median(verT).Microseconds())/1000, "verify-ms")
			b.ReportMetric(float64(len(proof.Groth16)), "groth16-bytes")
			b.ReportMetric(float64(len(pb)), "file-bytes")
			b.Logf("B=%d: %d constraints, domain %d, setup %v (phase 1 cached: %v), prove %v (runs %v), verify %v",
				batch, pk.Constraints(), tr.Domain, setup.Round(time.Millisecond), len(tr.Phase1) == 0, median(proveT).Round(time.Millisecond), proveT, median(verT))
		})
	}
}

// BenchmarkInitPhase2Default times the phase-2 initialisation alone for the
// default model at B=3 (phase 1 cached under $VEIL_BENCH_DATA if set).
func BenchmarkInitPhase2Default(b *testing.B) {
	f, _ := model.Default()
	spec, _ := circuits.SpecOf(f.Model)
	r, err := zk.Compile(spec, 3)
	if err != nil {
		b.Fatal(err)
	}
	data := os.Getenv("VEIL_BENCH_DATA")
	if data == "" {
		data = b.TempDir()
	}
	srs, lag, _, err := phase1Cached(context.Background(), zk.Domain(r), data, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := initPhase2(context.Background(), r, srs, lag, nil); err != nil {
			b.Fatal(err)
		}
	}
}
