package mpcsetup

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
)

// A ceremony with two contributors per phase on a small circuit with a
// commitment: every step, the verification, a tampered contribution, and
// keys that prove and verify.
func TestCeremonyTwoParties(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := compileSmall(t)
	c := circuitRef{id: "small", batch: 1, classes: 1, compile: func() (*cs.R1CS, error) { return r, nil }}
	if _, err := ceremonyInit(dir, c); err != nil {
		t.Fatal(err)
	}
	if _, err := ceremonyInit(dir, c); err == nil {
		t.Fatal("initialised twice")
	}
	for i := 0; i < 2; i++ {
		if _, _, err := CeremonyContribute(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	if n1, _, err := ceremonyVerify(ctx, dir, c, nil); err != nil || n1 != 2 {
		t.Fatalf("verify phase 1: %d contributions, %v", n1, err)
	}
	if err := ceremonyClosePhase1(ctx, dir, c, []byte("beacon 1"), nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := CeremonyContribute(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	if n1, n2, err := ceremonyVerify(ctx, dir, c, nil); err != nil || n1 != 2 || n2 != 2 {
		t.Fatalf("verify: %d, %d contributions, %v", n1, n2, err)
	}

	// A contribution with one flipped byte is caught.
	last := filepath.Join(dir, "phase2-0002.bin")
	good, _ := os.ReadFile(last)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(last, bad, 0o644)
	if _, _, err := ceremonyVerify(ctx, dir, c, nil); err == nil {
		t.Fatal("tampered contribution accepted")
	} else {
		t.Logf("tampered contribution: %v", err)
	}
	os.WriteFile(last, good, 0o644)

	_, gpk, gvk, err := ceremonyFinalize(ctx, dir, c, []byte("beacon 2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &smallCommitCircuit{X: make([]frontend.Variable, 40), Y: make([]frontend.Variable, 40)}
	z := big.NewInt(0)
	for i := range a.X {
		x, y := int64(i*5%256), int64(i*7+1)
		a.X[i], a.Y[i] = x, y
		p := new(big.Int).Mul(big.NewInt(x), new(big.Int).Lsh(big.NewInt(1), 40))
		p.Add(p, big.NewInt(y-3))
		p.Mul(p, big.NewInt(y-x))
		p.Mul(p, big.NewInt(int64(i+2)))
		z.Add(z, p)
	}
	a.Z = z
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		t.Fatal(err)
	}
	proof, err := groth16.Prove(r, gpk, w)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := w.Public()
	if err := groth16.Verify(proof, gvk, pub); err != nil {
		t.Fatalf("ceremony keys do not verify: %v", err)
	}
}
