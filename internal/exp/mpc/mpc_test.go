package mpc

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	p2 "github.com/consensys/gnark/std/hash/poseidon2"
)

type C struct {
	In  []frontend.Variable
	Out frontend.Variable `gnark:",public"`
}

func (c *C) Define(api frontend.API) error {
	h, _ := p2.New(api)
	h.Write(c.In...)
	api.AssertIsDifferent(h.Sum(), c.Out)
	return nil
}

func TestMPC(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("N"))
	c := &C{In: make([]frontend.Variable, n)}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	N := ecc.NextPowerOfTwo(uint64(ccs.GetNbConstraints()))
	t.Logf("constraints %d domain %d", ccs.GetNbConstraints(), N)
	t0 := time.Now()
	lap := func(s string) { t.Logf("%s: %v", s, time.Since(t0)); t0 = time.Now() }
	var p1 mpcsetup.Phase1
	p1.Initialize(N)
	lap("p1 init")
	p1.Contribute()
	lap("p1 contribute")
	var p1b mpcsetup.Phase1
	p1b.Initialize(N)
	lap("p1 init2")
	commons, err := mpcsetup.VerifyPhase1(N, []byte("beacon"), &p1)
	if err != nil {
		t.Fatal(err)
	}
	lap("p1 verify+seal")
	var p2 mpcsetup.Phase2
	p2.Initialize(ccs.(*cs.R1CS), &commons)
	lap("p2 init")
	p2.Contribute()
	lap("p2 contribute")
	pk, vk, err := mpcsetup.VerifyPhase2(ccs.(*cs.R1CS), &commons, []byte("beacon2"), &p2)
	if err != nil {
		t.Fatal(err)
	}
	lap("p2 verify+seal (includes init)")
	_ = pk
	_ = vk
	t0 = time.Now()
	_, _, err = groth16.Setup(ccs)
	lap("plain groth16 setup")
}
