package mpcsetup

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
)

// allocated is the number of bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// maxRefusalAlloc bounds what refusing a blob may allocate: the forged
// size fields below would make gnark's decoders allocate gigabytes to
// terabytes.
const maxRefusalAlloc = 1 << 20

func phase1Contribution(t testing.TB, n uint64) []byte {
	t.Helper()
	p, err := NewPhase1(n)
	if err != nil {
		t.Fatal(err)
	}
	next, err := p.Contribute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return next.Bytes()
}

// phase1NOffset is where the SRS's N sits in a phase-1 encoding whose
// points are compressed: after three update proofs.
const phase1NOffset = 3 * (curve.SizeOfG1AffineCompressed + curve.SizeOfG2AffineCompressed)

// A phase-1 contribution of the right length whose N field says 2^36 (the
// reviewer's attack: gnark's SrsCommons.ReadFrom allocated 5·2^36 points)
// is refused as ErrSize before anything is allocated from N; so is one
// whose N is another valid domain.
func TestDecodePhase1RefusesForgedDomain(t *testing.T) {
	b := phase1Contribution(t, 16)
	if got := binary.BigEndian.Uint64(b[phase1NOffset:]); got != 16 {
		t.Fatalf("N at offset %d is %d, want 16", phase1NOffset, got)
	}
	if _, err := DecodePhase1(b, 16); err != nil {
		t.Fatalf("the unmodified contribution: %v", err)
	}
	for _, forged := range []uint64{1 << 36, 1<<64 - 1, 8, 0} {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint64(c[phase1NOffset:], forged)
		var err error
		a := allocated(func() { _, err = DecodePhase1(c, 16) })
		if !errors.Is(err, ErrSize) {
			t.Errorf("N = %d: err %v, want ErrSize", forged, err)
		}
		if a > maxRefusalAlloc {
			t.Errorf("N = %d: refusing allocated %d bytes", forged, a)
		}
	}
}

// fakePhase2 is an accumulator of the given shape whose points are all
// generators, with a 32-byte challenge: the decoders check sizes and
// encodings, not the contribution.
func fakePhase2(pkk, z int, ckk ...int) *gmpc.Phase2 {
	_, _, g1, g2 := curve.Generators()
	p := new(gmpc.Phase2)
	p.Parameters.G1.Delta, p.Parameters.G2.Delta = g1, g2
	p.Parameters.G1.PKK = fill(make([]curve.G1Affine, pkk), g1)
	p.Parameters.G1.Z = fill(make([]curve.G1Affine, z), g1)
	for _, k := range ckk {
		p.Parameters.G1.SigmaCKK = append(p.Parameters.G1.SigmaCKK, fill(make([]curve.G1Affine, k), g1))
		p.Parameters.G2.Sigma = append(p.Parameters.G2.Sigma, g2)
	}
	p.Sigmas = make([]cmpc.UpdateProof, len(ckk))
	p.Challenge = make([]byte, 32)
	return p
}

// Offsets in a compressed phase-2 encoding with one commitment: the
// commitment count, then [δ]₁, then PKK's length.
const (
	g1c       = curve.SizeOfG1AffineCompressed
	g2c       = curve.SizeOfG2AffineCompressed
	pkkOffset = 2 + g1c
)

// Forged list lengths in a phase-2 contribution of the right total length
// (the reviewer's attack: 0xffffffff in PKK's prefix made gnark allocate
// 274 GB) are refused as ErrSize without allocating from them: PKK's, Z's,
// a commitment's bases and the commitment count. The unmodified blob
// decodes to exactly what gnark's decoder gives.
func TestDecodePhase2RefusesForgedLengths(t *testing.T) {
	prev := fakePhase2(10, 15, 3)
	prev.Challenge = nil
	b := Phase2Bytes(fakePhase2(10, 15, 3))
	got, err := DecodePhase2(b, prev)
	if err != nil {
		t.Fatalf("the unmodified contribution: %v", err)
	}
	if !bytes.Equal(Phase2Bytes(got), b) {
		t.Fatal("decoding and re-encoding changed the accumulator")
	}
	zOffset := pkkOffset + 4 + 10*g1c
	ckkOffset := zOffset + 4 + 15*g1c + g2c
	for _, f := range []struct {
		name string
		off  int
		four bool
		v    uint32
	}{
		{"PKK", pkkOffset, true, 0xffffffff},
		{"PKK one more", pkkOffset, true, 11},
		{"Z", zOffset, true, 0xffffffff},
		{"commitment bases", ckkOffset, true, 0xffffffff},
		{"commitment count", 0, false, 0xffff},
	} {
		c := bytes.Clone(b)
		if f.four {
			binary.BigEndian.PutUint32(c[f.off:], f.v)
		} else {
			binary.BigEndian.PutUint16(c[f.off:], uint16(f.v))
		}
		var err error
		a := allocated(func() { _, err = DecodePhase2(c, prev) })
		if !errors.Is(err, ErrSize) {
			t.Errorf("%s = %#x: err %v, want ErrSize", f.name, f.v, err)
		}
		if a > maxRefusalAlloc {
			t.Errorf("%s = %#x: refusing allocated %d bytes", f.name, f.v, a)
		}
	}
}

// The start's decoder checks its lists' lengths too, VKK's included, and
// DecodePhase2For (a restarted node's decoder) checks the circuit's shape.
func TestDecodePhase2StartRefusesForgedLengths(t *testing.T) {
	r := compileSmall(t)
	n := 1 << 12
	for n/2 >= r.GetNbConstraints() {
		n /= 2
	}
	sh, err := shapeOf(r, n)
	if err != nil {
		t.Fatal(err)
	}
	acc := fakePhase2(sh.pkk, n-1, sh.ckk...)
	acc.Challenge = nil
	_, _, g1, _ := curve.Generators()
	start := &Phase2Start{Acc: acc, VKK: fill(make([]curve.G1Affine, sh.vkk), g1)}
	b := start.Bytes()
	if int64(len(b)) != sh.startSize() {
		t.Fatalf("fake start has %d bytes, want %d", len(b), sh.startSize())
	}
	if _, err := DecodePhase2Start(b, r, n); err != nil {
		t.Fatalf("the unmodified start: %v", err)
	}
	for _, off := range []int{pkkOffset, len(b) - 4 - sh.vkk*g1c} {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint32(c[off:], 0xffffffff)
		var err error
		a := allocated(func() { _, err = DecodePhase2Start(c, r, n) })
		if !errors.Is(err, ErrSize) {
			t.Errorf("length at %d forged: err %v, want ErrSize", off, err)
		}
		if a > maxRefusalAlloc {
			t.Errorf("length at %d forged: refusing allocated %d bytes", off, a)
		}
	}
	contrib := Phase2Bytes(fakePhase2(sh.pkk, n-1, sh.ckk...))
	if _, err := DecodePhase2For(contrib, r, n); err != nil {
		t.Fatalf("DecodePhase2For on a contribution of the circuit's shape: %v", err)
	}
	binary.BigEndian.PutUint32(contrib[pkkOffset:], 0xffffffff)
	if _, err := DecodePhase2For(contrib, r, n); !errors.Is(err, ErrSize) {
		t.Errorf("DecodePhase2For with a forged PKK length: err %v, want ErrSize", err)
	}
}

// The decoders never panic and never allocate more than the expected
// shape, whatever the bytes: run with go test -fuzz FuzzDecodePhase1.
func FuzzDecodePhase1(f *testing.F) {
	b := phase1Contribution(f, 4)
	f.Add(b)
	c := bytes.Clone(b)
	binary.BigEndian.PutUint64(c[phase1NOffset:], 1<<36)
	f.Add(c)
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePhase1(b, 4)
		if err == nil && p.Domain() != 4 {
			t.Fatalf("decoded domain %d, want 4", p.Domain())
		}
	})
}

// FuzzDecodePhase2: as FuzzDecodePhase1, for contributions to a small
// phase 2 with one commitment.
func FuzzDecodePhase2(f *testing.F) {
	prev := fakePhase2(3, 7, 2)
	prev.Challenge = nil
	b := Phase2Bytes(fakePhase2(3, 7, 2))
	f.Add(b)
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[pkkOffset:], 0xffffffff)
	f.Add(c)
	c = bytes.Clone(b)
	binary.BigEndian.PutUint16(c, 0xffff)
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePhase2(b, prev)
		if err == nil && (len(p.Parameters.G1.PKK) != 3 || len(p.Parameters.G1.Z) != 7 || len(p.Parameters.G1.SigmaCKK) != 1 || len(p.Parameters.G1.SigmaCKK[0]) != 2) {
			t.Fatal("decoded an accumulator of another shape")
		}
	})
}

// DecodePhase2Prefix (shape unknown) decodes an accumulator and the
// accumulator at the head of a start as gnark does, and refuses a list
// length the remaining bytes cannot hold without allocating it.
func TestDecodePhase2PrefixBoundsLengths(t *testing.T) {
	acc := fakePhase2(10, 15, 3)
	b := Phase2Bytes(acc)
	got, err := DecodePhase2Prefix(b)
	if err != nil || !bytes.Equal(Phase2Bytes(got), b) {
		t.Fatalf("decode: %v", err)
	}
	_, _, g1, _ := curve.Generators()
	start := &Phase2Start{Acc: acc, VKK: fill(make([]curve.G1Affine, 4), g1)}
	if got, err := DecodePhase2Prefix(start.Bytes()); err != nil || !bytes.Equal(Phase2Bytes(got), b) {
		t.Fatalf("decode the head of a start: %v", err)
	}
	c := bytes.Clone(b)
	binary.BigEndian.PutUint32(c[pkkOffset:], 0xffffffff)
	a := allocated(func() { _, err = DecodePhase2Prefix(c) })
	if !errors.Is(err, ErrSize) || a > maxRefusalAlloc {
		t.Fatalf("forged PKK length: err %v, %d bytes allocated", err, a)
	}
}
