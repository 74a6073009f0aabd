package mpcsetup

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/rangecheck"
)

// smallCommitCircuit uses api.Commit (through std/rangecheck) and
// coefficients of every kind, so that the commitment keys are exercised.
type smallCommitCircuit struct {
	X, Y []frontend.Variable
	Z    frontend.Variable `gnark:",public"`
}

func (c *smallCommitCircuit) Define(api frontend.API) error {
	rc := rangecheck.New(api)
	acc := frontend.Variable(0)
	for i := range c.X {
		rc.Check(c.X[i], 8)
		p := api.Mul(api.Add(api.Mul(c.X[i], 1<<40), c.Y[i], -3), api.Sub(c.Y[i], c.X[i]))
		acc = api.Add(acc, api.Mul(p, i+2))
	}
	api.AssertIsEqual(acc, c.Z)
	return nil
}

func compileSmall(t *testing.T) *cs.R1CS {
	t.Helper()
	c := &smallCommitCircuit{X: make([]frontend.Variable, 40), Y: make([]frontend.Variable, 40)}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	return ccs.(*cs.R1CS)
}

func mustBytes(t *testing.T, f func(b *bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Our phase-1-of-one, Lagrange bases and phase-2 initialisation must give
// exactly what gnark's own (slow) code gives.
func TestInitPhase2MatchesGnark(t *testing.T) {
	ctx := context.Background()
	r := compileSmall(t)
	n := uint64(ecc.NextPowerOfTwo(uint64(r.GetNbConstraints())))
	t.Logf("%d constraints, domain %d, %d commitments", r.GetNbConstraints(), n, len(r.CommitmentInfo.(interface{ CommitmentIndexes() []int }).CommitmentIndexes()))
	beacon := []byte("test beacon")

	// Phase 1 of one, fast path, against gnark's verification and seal.
	transcript, srs, lagFast, err := phase1OfOne(ctx, n, beacon)
	if err != nil {
		t.Fatal(err)
	}
	var p1 gmpc.Phase1
	if _, err := p1.ReadFrom(bytes.NewReader(transcript)); err != nil {
		t.Fatal(err)
	}
	gsrs, err := gmpc.VerifyPhase1(n, beacon, &p1)
	if err != nil {
		t.Fatalf("gnark rejects our phase-1 contribution: %v", err)
	}
	if !bytes.Equal(mustBytes(t, func(b *bytes.Buffer) error { _, err := gsrs.WriteTo(b); return err }),
		mustBytes(t, func(b *bytes.Buffer) error { _, err := srs.WriteTo(b); return err })) {
		t.Fatal("sealed SRS differs from gnark's")
	}

	// Lagrange basis: fast path == group FFT.
	lagFFT, err := lagrangeFromSRS(ctx, &gsrs, int(n))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lagFast, lagFFT) {
		t.Fatal("Lagrange bases differ")
	}

	// Phase 2 initialisation == gnark's.
	var gp gmpc.Phase2
	gev := gp.Initialize(r, &gsrs)
	mp, mev, err := initPhase2(ctx, r, srs, lagFFT, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&gev, mev) {
		t.Fatal("Phase2Evaluations differ from gnark's")
	}
	gb := mustBytes(t, func(b *bytes.Buffer) error { _, err := gp.WriteTo(b); return err })
	mb := mustBytes(t, func(b *bytes.Buffer) error { _, err := mp.WriteTo(b); return err })
	if !bytes.Equal(gb, mb) {
		t.Fatal("Phase2 differs from gnark's")
	}
}
