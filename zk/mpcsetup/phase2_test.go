package mpcsetup

import (
	"bytes"
	"context"
	"errors"
	"math/big"
	"reflect"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// sealedPhase1 runs a two-party phase 1 at domain n and seals it.
func sealedPhase1(t *testing.T, n uint64, beacon string) (*gmpc.SrsCommons, *Phase1) {
	t.Helper()
	ctx := context.Background()
	p, err := NewPhase1(n)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		next, err := p.Contribute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Verify(next); err != nil {
			t.Fatal(err)
		}
		p = next
	}
	srs, err := p.Seal(ctx, []byte(beacon))
	if err != nil {
		t.Fatal(err)
	}
	return srs, p
}

func smallWitness(t *testing.T) frontend.Circuit {
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
	return a
}

// A full phase 2 the way the ledger runs it, on a circuit with a
// commitment and a phase 1 one size up (truncated): the start computed
// with the Lagrange basis is gnark's and passes the FFT-free check, which
// refuses a changed start, another circuit's and another SRS's; gnark
// verifies the contributions; the verifying key derived without the
// proving key is gnark's; the keys prove and verify.
func TestPhase2AsTheLedgerRunsIt(t *testing.T) {
	ctx := context.Background()
	r := compileSmall(t)
	n := int(ecc.NextPowerOfTwo(uint64(r.GetNbConstraints())))
	big, p1last := sealedPhase1(t, uint64(2*n), "beacon 1")
	srs, err := TruncateSRS(big, n)
	if err != nil {
		t.Fatal(err)
	}
	lag, err := lagrangeFromSRS(ctx, srs, n)
	if err != nil {
		t.Fatal(err)
	}
	start, evals, err := NewPhase2Start(ctx, r, srs, lag)
	if err != nil {
		t.Fatal(err)
	}
	var gp gmpc.Phase2
	gev := gp.Initialize(r, srs)
	if !bytes.Equal(Phase2Bytes(&gp), Phase2Bytes(start.Acc)) || !reflect.DeepEqual(gev.G1.VKK, start.VKK) {
		t.Fatal("start differs from gnark's Initialize")
	}
	id := []byte("srs-1")
	if err := CheckPhase2Start(ctx, r, srs, id, start); err != nil {
		t.Fatalf("honest start refused: %v", err)
	}
	sb := start.Bytes()
	dec, err := DecodePhase2Start(sb, r, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPhase2Start(ctx, r, srs, id, dec); err != nil {
		t.Fatalf("decoded start refused: %v", err)
	}
	if _, err := DecodePhase2Start(sb[:len(sb)-1], r, n); !errors.Is(err, ErrSize) {
		t.Fatalf("truncated start: %v", err)
	}

	// One K changed (PKK, a commitment base, VKK), Z changed: refused.
	for name, mutate := range map[string]func(s *Phase2Start){
		"PKK":   func(s *Phase2Start) { s.Acc.Parameters.G1.PKK[3] = s.Acc.Parameters.G1.PKK[4] },
		"CKK":   func(s *Phase2Start) { s.Acc.Parameters.G1.SigmaCKK[0][1] = s.Acc.Parameters.G1.SigmaCKK[0][0] },
		"VKK":   func(s *Phase2Start) { s.VKK[1] = s.VKK[0] },
		"Z":     func(s *Phase2Start) { s.Acc.Parameters.G1.Z[7] = s.Acc.Parameters.G1.Z[8] },
		"δ":     func(s *Phase2Start) { s.Acc.Parameters.G1.Delta = s.Acc.Parameters.G1.PKK[0] },
		"shape": func(s *Phase2Start) { s.VKK = s.VKK[1:] },
	} {
		bad, _ := DecodePhase2Start(sb, r, n)
		mutate(bad)
		if err := CheckPhase2Start(ctx, r, srs, id, bad); !errors.Is(err, ErrWrongCircuit) {
			t.Errorf("start with %s changed: %v", name, err)
		}
	}
	// Another circuit's start, and this start on another SRS: refused.
	other := compileOther(t)
	if err := CheckPhase2Start(ctx, other, srs, id, start); !errors.Is(err, ErrWrongCircuit) {
		t.Errorf("start checked against another circuit: %v", err)
	}
	big2, _ := sealedPhase1(t, uint64(2*n), "beacon 2")
	srs2, _ := TruncateSRS(big2, n)
	if err := CheckPhase2Start(ctx, r, srs2, id, start); !errors.Is(err, ErrWrongCircuit) {
		t.Errorf("start checked against another SRS: %v", err)
	}

	// Three contributions, each verified; gnark agrees.
	chain := []*gmpc.Phase2{start.Acc}
	for i := 0; i < 3; i++ {
		prev := chain[len(chain)-1]
		next := ContributePhase2(prev)
		b := Phase2Bytes(next)
		d, err := DecodePhase2(b, prev)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyPhase2(prev, d); err != nil {
			t.Fatalf("contribution %d: %v", i, err)
		}
		if _, err := DecodePhase2(b[:len(b)-3], prev); !errors.Is(err, ErrSize) {
			t.Fatalf("truncated contribution: %v", err)
		}
		chain = append(chain, d)
	}
	if err := VerifyPhase2(chain[2], chain[2]); !errors.Is(err, ErrNotExtending) {
		t.Errorf("replayed contribution: %v", err)
	}
	if err := VerifyPhase2(chain[2], chain[1]); !errors.Is(err, ErrNotExtending) {
		t.Errorf("older contribution: %v", err)
	}
	tampered := ClonePhase2(chain[3])
	tampered.Parameters.G1.PKK[0] = tampered.Parameters.G1.PKK[1]
	if err := VerifyPhase2(chain[2], tampered); !errors.Is(err, ErrBadContribution) {
		t.Errorf("tampered contribution: %v", err)
	}

	// Proofs bound to a contributor's key: they verify for that key only,
	// not for another, not unbound (gnark's check), and the bound
	// contribution moves δ as gnark's does (the next one verifies on it).
	alice, bob := []byte("alice's key"), []byte("bob's key")
	bound := ContributePhase2As(chain[3], alice)
	if err := VerifyPhase2As(chain[3], bound, alice); err != nil {
		t.Fatalf("bound contribution, its own key: %v", err)
	}
	if err := VerifyPhase2As(chain[3], bound, bob); !errors.Is(err, ErrBadContribution) {
		t.Errorf("bound contribution claimed by another key: %v", err)
	}
	if err := VerifyPhase2(chain[3], bound); !errors.Is(err, ErrBadContribution) {
		t.Errorf("bound contribution checked unbound: %v", err)
	}
	if bound.Parameters.G1.Delta.Equal(&chain[3].Parameters.G1.Delta) {
		t.Error("the bound contribution did not change δ")
	}
	if err := VerifyPhase2As(bound, ContributePhase2As(bound, bob), bob); err != nil {
		t.Errorf("a contribution on the bound one: %v", err)
	}
	forgedBound := ClonePhase2(bound)
	forgedBound.Parameters.G1.Z[0] = forgedBound.Parameters.G1.Z[1]
	if err := VerifyPhase2As(chain[3], forgedBound, alice); !errors.Is(err, ErrBadContribution) {
		t.Errorf("bound contribution with a changed point: %v", err)
	}

	beacon := []byte("beacon 2")
	last := chain[len(chain)-1]
	vk, err := DeriveVerifyingKey(r, srs, start, last, beacon)
	if err != nil {
		t.Fatal(err)
	}
	gpk, gvk := SealPhase2(srs, evals, last, beacon)
	var a, b bytes.Buffer
	vk.WriteTo(&a)
	gvk.WriteTo(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("derived verifying key differs from gnark's seal")
	}
	// The prover's path (two FFTs, the rest from the start) gives the
	// opener's keys byte for byte; a start with a changed K is refused.
	ppk, pvk, err := keysFromTranscript(ctx, r, &Transcript1{Last: p1last, Beacon: []byte("beacon 1")}, start.Bytes(), last, beacon)
	if err != nil {
		t.Fatal(err)
	}
	var x, y bytes.Buffer
	ppk.WriteTo(&x)
	gpk.WriteTo(&y)
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("the proving key from the transcript differs from the opener's")
	}
	x.Reset()
	pvk.WriteTo(&x)
	if !bytes.Equal(x.Bytes(), a.Bytes()) {
		t.Fatal("the verifying key from the transcript differs from the derived one")
	}
	badStart, _ := DecodePhase2Start(start.Bytes(), r, n)
	badStart.Acc.Parameters.G1.SigmaCKK[0][0] = badStart.Acc.Parameters.G1.SigmaCKK[0][1]
	if _, _, err := keysFromTranscript(ctx, r, &Transcript1{Last: p1last, Beacon: []byte("beacon 1")}, badStart.Bytes(), last, beacon); !errors.Is(err, ErrWrongCircuit) {
		t.Fatalf("keys from a transcript with a changed commitment base: %v", err)
	}
	// gnark's own VerifyPhase2 over the same contributions gives the same key.
	cc := make([]*gmpc.Phase2, 0, 3)
	for _, p := range chain[1:] {
		cc = append(cc, ClonePhase2(p))
	}
	_, gvk2, err := gmpc.VerifyPhase2(r, srs, beacon, cc...)
	if err != nil {
		t.Fatal(err)
	}
	var c bytes.Buffer
	gvk2.WriteTo(&c)
	if !bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("derived verifying key differs from gnark's VerifyPhase2")
	}
	w, _ := frontend.NewWitness(smallWitness(t), ecc.BN254.ScalarField())
	proof, err := groth16.Prove(r, gpk, w)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := w.Public()
	if err := groth16.Verify(proof, vk, pub); err != nil {
		t.Fatalf("derived key rejects a proof: %v", err)
	}
}

// otherCircuit has the same shape as smallCommitCircuit with other
// constants: same sizes, other constraints.
type otherCircuit struct{ smallCommitCircuit }

func (c *otherCircuit) Define(api frontend.API) error {
	acc := frontend.Variable(0)
	for i := range c.X {
		p := api.Mul(api.Add(api.Mul(c.X[i], 1<<41), c.Y[i], -5), api.Sub(c.Y[i], c.X[i]))
		acc = api.Add(acc, api.Mul(p, i+3))
	}
	c.smallCommitCircuit.Define(api)
	api.AssertIsEqual(acc, acc)
	return nil
}

func compileOther(t *testing.T) *cs.R1CS {
	t.Helper()
	c := &otherCircuit{smallCommitCircuit{X: make([]frontend.Variable, 40), Y: make([]frontend.Variable, 40)}}
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		t.Fatal(err)
	}
	return ccs.(*cs.R1CS)
}
