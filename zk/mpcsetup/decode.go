package mpcsetup

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	gio "github.com/consensys/gnark/io"
)

// Fixed-shape decoders. gnark's ReadFrom methods allocate what the size
// fields inside the encoding say (the SRS's N, the 4-byte prefix of every
// point list) before reading a point, so a blob of the right total length
// whose N says 2^36 makes a node allocate terabytes: a fatal "out of
// memory" that recover cannot catch. These decoders read the same bytes in
// the same order as gnark's, but check every size field against the shape
// the caller expects before anything is allocated from it. The size fields
// are checked where the decoder reads them, not at fixed offsets: a point
// may be encoded uncompressed, which moves everything after it.

// phase2Shape is the sizes of a phase-2 accumulator's point lists.
type phase2Shape struct {
	pkk, z int
	ckk    []int
}

func shapeOfAcc(p *gmpc.Phase2) phase2Shape {
	s := phase2Shape{pkk: len(p.Parameters.G1.PKK), z: len(p.Parameters.G1.Z), ckk: make([]int, len(p.Parameters.G1.SigmaCKK))}
	for i, c := range p.Parameters.G1.SigmaCKK {
		s.ckk[i] = len(c)
	}
	return s
}

func (s *shape) acc() phase2Shape { return phase2Shape{pkk: s.pkk, z: s.n - 1, ckk: s.ckk} }

// anyLen, as a wanted list length, accepts any length the remaining bytes
// can hold (a decoder that does not know the shape: what it allocates is
// then bounded by the blob's size).
const anyLen = -1

// expectLen refuses the 4-byte list length the decoder reads next from r
// unless it is want; it does not consume it.
func expectLen(r *bytes.Reader, want int, what string) error {
	var b [4]byte
	pos := r.Size() - int64(r.Len())
	if _, err := r.ReadAt(b[:], pos); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrEncoding, what, err)
	}
	got := binary.BigEndian.Uint32(b[:])
	if want == anyLen {
		if int64(got)*curve.SizeOfG1AffineCompressed > int64(r.Len()-4) {
			return fmt.Errorf("%w: %s claims %d points, %d bytes remain", ErrSize, what, got, r.Len()-4)
		}
		return nil
	}
	if int64(got) != int64(want) {
		return fmt.Errorf("%w: %s has %d points, want %d", ErrSize, what, got, want)
	}
	return nil
}

// readPhase1 decodes a phase-1 accumulator for domain n (gnark's
// Phase1.ReadFrom) after checking its N.
func readPhase1(r *bytes.Reader, p *Phase1, n uint64) error {
	for _, v := range []io.ReaderFrom{&p.Tau, &p.Alpha, &p.Beta} {
		if _, err := v.ReadFrom(r); err != nil {
			return fmt.Errorf("%w: phase-1 proofs: %v", ErrEncoding, err)
		}
	}
	var nb [8]byte
	pos := r.Size() - int64(r.Len())
	if _, err := r.ReadAt(nb[:], pos); err != nil {
		return fmt.Errorf("%w: phase-1 SRS size: %v", ErrEncoding, err)
	}
	if got := binary.BigEndian.Uint64(nb[:]); got != n {
		return fmt.Errorf("%w: phase-1 accumulator for domain %d, want %d", ErrSize, got, n)
	}
	if _, err := p.SRS.ReadFrom(r); err != nil {
		return fmt.Errorf("%w: phase-1 SRS: %v", ErrEncoding, err)
	}
	c, _, err := gio.ReadBytesShort(r)
	if err != nil {
		return fmt.Errorf("%w: phase-1 challenge: %v", ErrEncoding, err)
	}
	p.Challenge = c
	return nil
}

// readPhase2 decodes a phase-2 accumulator of shape s (gnark's
// Phase2.ReadFrom, field by field) after checking each list's length.
func readPhase2(r *bytes.Reader, s phase2Shape) (*gmpc.Phase2, error) {
	var nc uint16
	if err := binary.Read(r, binary.BigEndian, &nc); err != nil {
		return nil, fmt.Errorf("%w: phase-2 accumulator: %v", ErrEncoding, err)
	}
	if s.ckk == nil { // any shape
		s.ckk = make([]int, nc)
		for i := range s.ckk {
			s.ckk[i] = anyLen
		}
	}
	if int(nc) != len(s.ckk) {
		return nil, fmt.Errorf("%w: phase-2 accumulator has %d commitments, want %d", ErrSize, nc, len(s.ckk))
	}
	p := new(gmpc.Phase2)
	p.Sigmas = make([]cmpc.UpdateProof, nc)
	p.Parameters.G1.SigmaCKK = make([][]curve.G1Affine, nc)
	p.Parameters.G2.Sigma = make([]curve.G2Affine, nc)
	dec := curve.NewDecoder(r)
	decode := func(v any, what string) error {
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: phase-2 %s: %v", ErrEncoding, what, err)
		}
		return nil
	}
	if err := decode(&p.Parameters.G1.Delta, "[δ]₁"); err != nil {
		return nil, err
	}
	if err := expectLen(r, s.pkk, "PKK"); err != nil {
		return nil, err
	}
	if err := decode(&p.Parameters.G1.PKK, "PKK"); err != nil {
		return nil, err
	}
	if err := expectLen(r, s.z, "Z"); err != nil {
		return nil, err
	}
	if err := decode(&p.Parameters.G1.Z, "Z"); err != nil {
		return nil, err
	}
	if err := decode(&p.Parameters.G2.Delta, "[δ]₂"); err != nil {
		return nil, err
	}
	for c := range p.Parameters.G1.SigmaCKK {
		if err := expectLen(r, s.ckk[c], fmt.Sprintf("commitment %d's bases", c)); err != nil {
			return nil, err
		}
		if err := decode(&p.Parameters.G1.SigmaCKK[c], "commitment bases"); err != nil {
			return nil, err
		}
	}
	for c := range p.Parameters.G2.Sigma {
		if err := decode(&p.Parameters.G2.Sigma[c], "σ"); err != nil {
			return nil, err
		}
	}
	if _, err := p.Delta.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("%w: phase-2 δ proof: %v", ErrEncoding, err)
	}
	for i := range p.Sigmas {
		if _, err := p.Sigmas[i].ReadFrom(r); err != nil {
			return nil, fmt.Errorf("%w: phase-2 σ proof: %v", ErrEncoding, err)
		}
	}
	c, _, err := gio.ReadBytesShort(r)
	if err != nil {
		return nil, fmt.Errorf("%w: phase-2 challenge: %v", ErrEncoding, err)
	}
	p.Challenge = c
	return p, nil
}

// DecodePhase2Prefix decodes a phase-2 accumulator of unknown shape from
// the beginning of b (an accumulator, or a start, whose encoding continues
// with VKK), as gnark's ReadFrom does, for a prover or contributor reading
// the ledger's last accumulator: every list length is bounded by the bytes
// that remain, so a lying node cannot make it allocate more than a few
// times len(b).
func DecodePhase2Prefix(b []byte) (*gmpc.Phase2, error) {
	return readPhase2(bytes.NewReader(b), phase2Shape{pkk: anyLen, z: anyLen})
}
