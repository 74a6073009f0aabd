package mpcsetup

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkPhase1 times one phase-1 contribution and what every ledger
// node does with it, at domain 2^$VEIL_BENCH_LOGN (default 17, the default
// circuit's): contribute (on every core), encode, decode with subgroup
// checks, verify against the previous accumulator, seal with a beacon.
//
//	go test -run '^$' -bench Phase1 -benchtime 1x -timeout 30m ./zk/mpcsetup/
func BenchmarkPhase1(b *testing.B) {
	logn := 17
	if s := os.Getenv("VEIL_BENCH_LOGN"); s != "" {
		logn, _ = strconv.Atoi(s)
	}
	n := uint64(1) << logn
	ctx := context.Background()
	p0, err := NewPhase1(n)
	if err != nil {
		b.Fatal(err)
	}
	// Start from a non-trivial accumulator, as every contribution but the first does.
	prev, err := p0.Contribute(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		next, err := prev.Contribute(ctx)
		if err != nil {
			b.Fatal(err)
		}
		contribute := time.Since(t0)
		t0 = time.Now()
		blob := next.Bytes()
		encode := time.Since(t0)
		t0 = time.Now()
		dec, err := DecodePhase1(blob, n)
		if err != nil {
			b.Fatal(err)
		}
		decode := time.Since(t0)
		t0 = time.Now()
		if err := prev.Verify(dec); err != nil {
			b.Fatal(err)
		}
		verify := time.Since(t0)
		t0 = time.Now()
		if _, err := dec.Seal(ctx, []byte("beacon")); err != nil {
			b.Fatal(err)
		}
		seal := time.Since(t0)
		b.ReportMetric(contribute.Seconds(), "contribute-s")
		b.ReportMetric(encode.Seconds(), "encode-s")
		b.ReportMetric(decode.Seconds(), "decode-s")
		b.ReportMetric(verify.Seconds(), "verify-s")
		b.ReportMetric(seal.Seconds(), "seal-s")
		b.ReportMetric(float64(len(blob))/1e6, "MB")
	}
}
