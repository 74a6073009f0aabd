package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/veil-project/veil/model"
)

// BenchmarkCompileDefault compiles the default model's circuit and reports
// its size: go test -run ^$ -bench CompileDefault ./circuits/
func BenchmarkCompileDefault(b *testing.B) {
	f, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	spec, err := SpecOf(f.Model)
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{1, 3, 6, 12} {
		b.Run(map[int]string{1: "B=1", 3: "B=3", 6: "B=6", 12: "B=12"}[batch], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, NewCircuit(spec, batch))
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(cs.GetNbConstraints()), "constraints")
			}
		})
	}
}
