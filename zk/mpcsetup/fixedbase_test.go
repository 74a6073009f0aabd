package mpcsetup

import (
	"math/big"
	"testing"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

func TestFixedBaseMatchesScalarMultiplication(t *testing.T) {
	_, _, g1, g2 := curve.Generators()
	s := make([]fr.Element, 1500)
	for i := range s {
		s[i].SetRandom()
	}
	s[0].SetZero()
	s[1].SetOne()
	s[2].SetInt64(-1)
	a1 := fixedBaseG1(&g1, s)
	a2 := fixedBaseG2(&g2, s[:40])
	for i := range s {
		var bi big.Int
		s[i].BigInt(&bi)
		var w1 curve.G1Affine
		w1.ScalarMultiplication(&g1, &bi)
		if !w1.Equal(&a1[i]) {
			t.Fatalf("G1 scalar %d differs", i)
		}
		if i < 40 {
			var w2 curve.G2Affine
			w2.ScalarMultiplication(&g2, &bi)
			if !w2.Equal(&a2[i]) {
				t.Fatalf("G2 scalar %d differs", i)
			}
		}
	}
}

func BenchmarkFixedBaseG1(b *testing.B) {
	_, _, g1, _ := curve.Generators()
	s := make([]fr.Element, 1<<14)
	for i := range s {
		s[i].SetRandom()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fixedBaseG1(&g1, s)
	}
}
