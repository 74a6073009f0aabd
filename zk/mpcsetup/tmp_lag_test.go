package mpcsetup

import (
	"context"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

func TestTmpLagrangeTiming(t *testing.T) {
	n := uint64(1 << 17)
	var tau, a, b fr.Element
	tau.SetRandom(); a.SetRandom(); b.SetRandom()
	t0 := time.Now()
	srs := srsFromSecrets(n, &tau, &a, &b)
	t.Logf("srs %v", time.Since(t0))
	t0 = time.Now()
	if _, err := lagrangeG1(context.Background(), srs.G1.Tau, int(n)); err != nil {
		t.Fatal(err)
	}
	t.Logf("lagrangeG1 %v", time.Since(t0))
	t0 = time.Now()
	if _, err := lagrangeG2(context.Background(), srs.G2.Tau, int(n)); err != nil {
		t.Fatal(err)
	}
	t.Logf("lagrangeG2 %v", time.Since(t0))
}
