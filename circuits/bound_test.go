package circuits

import (
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// MinConstraints never exceeds the compiled circuit's constraint count
// (it is a lower bound the ledger refuses on), and is within a small
// factor of it (so it refuses what is far too big): for the tiny model
// (dense and square layers) and a model with a polynomial activation.
func TestMinConstraintsIsALowerBound(t *testing.T) {
	for name, m := range map[string]func() (*Spec, error){
		"tiny": func() (*Spec, error) { return SpecOf(tinyModel(3)) },
		"poly": func() (*Spec, error) { return SpecOf(polyModel(t, 5)) },
	} {
		spec, err := m()
		if err != nil {
			t.Fatal(err)
		}
		for _, batch := range []int{1, 2, 4} {
			ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, NewCircuit(spec, batch))
			if err != nil {
				t.Fatal(err)
			}
			got, bound := int64(ccs.GetNbConstraints()), spec.MinConstraints(batch)
			t.Logf("%s, batch %d: %d constraints, bound %d", name, batch, got, bound)
			if bound > got || bound*4 < got {
				t.Errorf("%s, batch %d: bound %d for %d constraints", name, batch, bound, got)
			}
		}
	}
}
