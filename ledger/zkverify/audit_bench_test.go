package zkverify_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/protocol"
)

// BenchmarkAuditPhase1 times `veil setup audit` of a sealed phase 1 with
// three contributions at domain 2^$VEIL_BENCH_LOGN (default 16, the demo's
// compact model): per audit, fetching every contribution from verified
// log entries and re-verifying it as a node does.
//
//	go test -run '^$' -bench AuditPhase1 -benchtime 1x -timeout 30m ./ledger/zkverify/
func BenchmarkAuditPhase1(b *testing.B) {
	logn := 16
	if s := os.Getenv("VEIL_BENCH_LOGN"); s != "" {
		logn, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	n := ceremonyNode(b, 1<<logn, 2, false)
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := protocol.ContributePhase1(ctx, n, ledger.Signer{ChainID: chain, Key: ledgertest.Key(name)}, name); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := protocol.CloseAndSeal(ctx, n, ledger.Signer{ChainID: chain, Key: ledgertest.Key("alice")}, ledger.Phase1ID, 10*time.Millisecond); err != nil {
		b.Fatal(err)
	}
	r, head := nodeReader(ctx, b, n)
	b.ResetTimer()
	for b.Loop() {
		a, err := protocol.AuditCeremony(ctx, r, head, ledger.Phase1ID, zkverify.NewCeremony(), nil)
		if err != nil || len(a.Phase1) != 3 {
			b.Fatal(a, err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/3, "s/contribution")
}
