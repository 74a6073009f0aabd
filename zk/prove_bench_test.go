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
