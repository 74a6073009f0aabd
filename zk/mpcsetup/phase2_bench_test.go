package mpcsetup

import (
	"context"
	"testing"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// BenchmarkPhase2Default times what every ledger node does in a phase-2
// ceremony of the default model's circuit (batch 3, 97,643 constraints,
// domain 2^17): check the ceremony's start without the Lagrange basis,
// decode and verify one contribution (target: <= 10 s per node), derive
// the verifying key; and what contributors and the prover do: contribute,
// seal the proving key. Phase 1 is a ceremony of one here (fast path), which
// changes none of the timed steps.
//
//	go test -run '^$' -bench Phase2Default -benchtime 1x -timeout 30m ./zk/mpcsetup/
func BenchmarkPhase2Default(b *testing.B) {
	ctx := context.Background()
	f, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	spec, err := circuits.SpecOf(f.Model)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	r, err := zk.Compile(spec, 3)
	if err != nil {
		b.Fatal(err)
	}
	compile := time.Since(t0)
	n := zk.Domain(r)
	_, srs, lag, err := phase1OfOne(ctx, n, []byte("beacon"))
	if err != nil {
		b.Fatal(err)
	}
	t0 = time.Now()
	start, evals, err := NewPhase2Start(ctx, r, srs, lag)
	if err != nil {
		b.Fatal(err)
	}
	initT := time.Since(t0)
	sb := start.Bytes()
	for i := 0; i < b.N; i++ {
		t0 = time.Now()
		dec, err := DecodePhase2Start(sb, r, int(n))
		if err != nil {
			b.Fatal(err)
		}
		if err := CheckPhase2Start(ctx, r, srs, []byte("id"), dec); err != nil {
			b.Fatal(err)
		}
		check := time.Since(t0)
		t0 = time.Now()
		next := ContributePhase2(start.Acc)
		contribute := time.Since(t0)
		blob := Phase2Bytes(next)
		t0 = time.Now()
		d, err := DecodePhase2(blob, start.Acc)
		if err != nil {
			b.Fatal(err)
		}
		if err := VerifyPhase2(start.Acc, d); err != nil {
			b.Fatal(err)
		}
		verify := time.Since(t0)
		t0 = time.Now()
		if _, err := DeriveVerifyingKey(r, srs, start, d, []byte("beacon 2")); err != nil {
			b.Fatal(err)
		}
		derive := time.Since(t0)
		t0 = time.Now()
		SealPhase2(srs, evals, d, []byte("beacon 2"))
		seal := time.Since(t0)
		b.ReportMetric(compile.Seconds(), "compile-s")
		b.ReportMetric(initT.Seconds(), "init-s")
		b.ReportMetric(check.Seconds(), "check-start-s")
		b.ReportMetric(contribute.Seconds(), "contribute-s")
		b.ReportMetric(verify.Seconds(), "verify-s")
		b.ReportMetric(derive.Seconds(), "derive-vk-s")
		b.ReportMetric(seal.Seconds(), "seal-pk-s")
		b.ReportMetric(float64(len(sb))/1e6, "start-MB")
		b.ReportMetric(float64(len(blob))/1e6, "contribution-MB")
	}
}
