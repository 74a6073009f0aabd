package mpcsetup

import (
	"bytes"
	"context"
	"errors"
	"testing"

	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
)

// Our phase-1 accumulator is gnark's: same encoding of the initial
// accumulator, contributions that gnark verifies, the same seal; and our
// Verify refuses what gnark refuses.
func TestPhase1MatchesGnark(t *testing.T) {
	ctx := context.Background()
	const n = 64
	p0, err := NewPhase1(n)
	if err != nil {
		t.Fatal(err)
	}
	var gb bytes.Buffer
	gmpc.NewPhase1(n).WriteTo(&gb)
	if !bytes.Equal(p0.Bytes(), gb.Bytes()) {
		t.Fatal("initial accumulator differs from gnark's")
	}
	if int64(len(p0.Bytes())) != Phase1Size(n, true) {
		t.Fatalf("initial size %d, Phase1Size says %d", len(p0.Bytes()), Phase1Size(n, true))
	}
	p1, err := p0.Contribute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A contribution bound to a key verifies for that key only.
	alice, bob := []byte("alice's key"), []byte("bob's key")
	bound, err := p0.ContributeAs(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := p0.VerifyAs(bound, alice); err != nil {
		t.Fatalf("bound contribution, its own key: %v", err)
	}
	if err := p0.VerifyAs(bound, bob); !errors.Is(err, ErrBadContribution) {
		t.Errorf("bound contribution claimed by another key: %v", err)
	}
	if err := p0.Verify(bound); !errors.Is(err, ErrBadContribution) {
		t.Errorf("bound contribution checked unbound: %v", err)
	}
	if err := p0.VerifyAs(p1, alice); !errors.Is(err, ErrBadContribution) {
		t.Errorf("unbound contribution claimed by a key: %v", err)
	}
	b1 := p1.Bytes()
	if int64(len(b1)) != Phase1Size(n, false) {
		t.Fatalf("size %d, Phase1Size says %d", len(b1), Phase1Size(n, false))
	}
	// gnark decodes and verifies our contribution, and a second one on top.
	g0 := gmpc.NewPhase1(n)
	g1 := new(gmpc.Phase1)
	if _, err := g1.ReadFrom(bytes.NewReader(b1)); err != nil {
		t.Fatal(err)
	}
	if err := g0.Verify(g1); err != nil {
		t.Fatalf("gnark rejects our contribution: %v", err)
	}
	if err := p0.Verify(p1); err != nil {
		t.Fatalf("we reject our contribution: %v", err)
	}
	d1, err := DecodePhase1(b1, n)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := d1.Contribute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g2 := new(gmpc.Phase1)
	g2.ReadFrom(bytes.NewReader(p2.Bytes()))
	if err := g1.Verify(g2); err != nil {
		t.Fatalf("gnark rejects our second contribution: %v", err)
	}
	if err := d1.Verify(p2); err != nil {
		t.Fatal(err)
	}
	// The seal is gnark's.
	beacon := []byte("beacon")
	srs, err := p2.Seal(ctx, beacon)
	if err != nil {
		t.Fatal(err)
	}
	gsrs := g2.Seal(beacon)
	var a, b bytes.Buffer
	srs.WriteTo(&a)
	gsrs.WriteTo(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("sealed SRS differs from gnark's")
	}

	// A contribution made on another accumulator does not extend this one.
	other, _ := p0.Contribute(ctx)
	otherNext, _ := other.Contribute(ctx)
	if err := p1.Verify(otherNext); !errors.Is(err, ErrNotExtending) {
		t.Fatalf("contribution on another accumulator: %v", err)
	}
	// The same contribution replayed on top of itself does not extend it.
	if err := p1.Verify(p1); !errors.Is(err, ErrNotExtending) {
		t.Fatalf("replayed contribution: %v", err)
	}
	// Tampering: one power changed, gnark and we both refuse.
	bad := *p2
	bad.SRS.G1.Tau = append(bad.SRS.G1.Tau[:0:0], p2.SRS.G1.Tau...)
	bad.SRS.G1.Tau[5] = p2.SRS.G1.Tau[6]
	if err := d1.Verify(&bad); !errors.Is(err, ErrBadContribution) {
		t.Fatalf("tampered power: %v", err)
	}
	gbad := new(gmpc.Phase1)
	gbad.ReadFrom(bytes.NewReader(bad.Bytes()))
	g1b := new(gmpc.Phase1)
	g1b.ReadFrom(bytes.NewReader(b1))
	if err := g1b.Verify(gbad); err == nil {
		t.Fatal("gnark accepts the tampered power")
	}
	// Truncated and padded blobs are refused by length.
	if _, err := DecodePhase1(b1[:len(b1)-1], n); !errors.Is(err, ErrSize) {
		t.Fatalf("truncated: %v", err)
	}
	if _, err := DecodePhase1(append(b1, 0), n); !errors.Is(err, ErrSize) {
		t.Fatalf("padded: %v", err)
	}
	if _, err := DecodePhase1(b1, 2*n); !errors.Is(err, ErrSize) {
		t.Fatalf("other domain: %v", err)
	}
	// A point off the curve is refused by the decoder.
	flip := append([]byte(nil), b1...)
	flip[len(flip)-100] ^= 0x01
	if _, err := DecodePhase1(flip, n); !errors.Is(err, ErrEncoding) {
		if err == nil {
			// the flip may land on another valid point: then the check fails
			if err := p0.Verify(mustDecode(t, flip, n)); err == nil {
				t.Fatal("flipped byte accepted")
			}
		} else {
			t.Fatalf("flipped byte: %v", err)
		}
	}
}

func mustDecode(t *testing.T, b []byte, n uint64) *Phase1 {
	p, err := DecodePhase1(b, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
