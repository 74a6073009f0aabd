package hashcost

import (
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/hash"
	p2 "github.com/consensys/gnark/std/hash/poseidon2"
	gkrp2 "github.com/consensys/gnark/std/hash/poseidon2/gkr-poseidon2"
	"github.com/consensys/gnark/std/rangecheck"
)

type C struct {
	In  []frontend.Variable
	Out frontend.Variable `gnark:",public"`
	gkr bool
	rc  int
}

func (c *C) Define(api frontend.API) error {
	var h hash.FieldHasher
	var err error
	if c.gkr {
		h, err = gkrp2.New(api)
	} else {
		h, err = p2.New(api)
	}
	if err != nil {
		return err
	}
	h.Write(c.In...)
	api.AssertIsDifferent(h.Sum(), c.Out)
	if c.rc > 0 {
		r := rangecheck.New(api)
		for i := 0; i < c.rc; i++ {
			r.Check(c.In[i%len(c.In)], 8)
		}
	}
	return nil
}

func TestCost(t *testing.T) {
	for _, g := range []bool{false, true} {
		for _, n := range []int{100, 1000, 4000} {
			c := &C{In: make([]frontend.Variable, n), gkr: g}
			cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("gkr=%v n=%d constraints=%d per=%.1f", g, n, cs.GetNbConstraints(), float64(cs.GetNbConstraints())/float64(n))
		}
	}
	for _, n := range []int{1000, 10000, 100000} {
		c := &C{In: make([]frontend.Variable, 10), rc: n}
		cs, _ := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
		t.Logf("rangecheck8 n=%d constraints=%d", n, cs.GetNbConstraints())
	}
}

func TestProve(t *testing.T) {
	n := 4000
	c := &C{In: make([]frontend.Variable, n), gkr: true}
	cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	pk, vk, err := groth16.Setup(cs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup %v constraints %d", time.Since(t0), cs.GetNbConstraints())
	a := &C{In: make([]frontend.Variable, n), Out: 1}
	for i := range a.In {
		a.In[i] = i
	}
	w, _ := frontend.NewWitness(a, ecc.BN254.ScalarField())
	t0 = time.Now()
	pr, err := groth16.Prove(cs, pk, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prove %v", time.Since(t0))
	pw, _ := w.Public()
	if err := groth16.Verify(pr, vk, pw); err != nil {
		t.Fatal(err)
	}
}
