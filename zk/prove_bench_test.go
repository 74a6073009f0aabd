package zk

import (
	"context"
	"os"
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
)

// BenchmarkProveDefaultCached proves a batch of 3 on the default model with
// keys cached under $VEIL_HOME (made by `veil setup --batch 3`); skipped
// when there are none.
func BenchmarkProveDefaultCached(b *testing.B) {
	home := os.Getenv("VEIL_HOME")
	if home == "" {
		b.Skip("VEIL_HOME not set")
	}
	f, _ := model.Default()
	spec, _ := circuits.SpecOf(f.Model)
	pk, err := LoadProvingKey(KeyDir(home, ModelID(spec.ID()), 3), spec)
	if err != nil {
		b.Skip(err)
	}
	p, err := NewProver(f.Model, Salt{31: 1}, pk)
	if err != nil {
		b.Fatal(err)
	}
	imgs := randomImages(9, 3)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Prove(context.Background(), imgs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDefaultCached verifies a batch-3 proof of the default model
// (keys as in BenchmarkProveDefaultCached), one at a time and through
// VerifyBatch on all cores.
func BenchmarkVerifyDefaultCached(b *testing.B) {
	home := os.Getenv("VEIL_HOME")
	if home == "" {
		b.Skip("VEIL_HOME not set")
	}
	f, _ := model.Default()
	spec, _ := circuits.SpecOf(f.Model)
	pk, err := LoadProvingKey(KeyDir(home, ModelID(spec.ID()), 3), spec)
	if err != nil {
		b.Skip(err)
	}
	p, _ := NewProver(f.Model, Salt{31: 1}, pk)
	proof, err := p.Prove(context.Background(), randomImages(9, 3))
	if err != nil {
		b.Fatal(err)
	}
	pb, _ := proof.MarshalBinary()
	b.Run("single", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := Verify(pk.VK, proof.Statement, pb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch", func(b *testing.B) {
		sts := make([]Statement, b.N)
		pbs := make([][]byte, b.N)
		for i := range sts {
			sts[i], pbs[i] = proof.Statement, pb
		}
		b.ResetTimer()
		for _, err := range VerifyBatch(pk.VK, sts, pbs) {
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
