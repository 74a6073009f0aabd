package zk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// gnark's decoders allocate slices from the length fields they read, before
// reading the elements: a key or proof announcing 2^32 points is a 256 GiB
// allocation, which Go cannot recover from. Every key and proof that comes
// from outside (a registration, a proof transaction, a file) is first
// checked here: every point in compressed form (as gnark writes them, so
// each field's size is fixed) and every length field consistent with the
// bytes that follow.

// Sizes of compressed BN254 points (gnark-crypto).
const (
	g1Compressed = 32
	g2Compressed = 64
)

// Limits on what a Veil key or proof holds: far above any real circuit's
// (a batch of 64 challenges of 1024 classes has 65,538 public inputs) and
// far below anything that could exhaust memory.
const (
	maxKeyPoints     = 1 << 17
	maxCommitments   = 16
	maxCommittedSets = 16
)

// compressedFlag reports whether the first byte of a point says it is
// compressed (gnark-crypto: the two most significant bits are not 00).
func compressedFlag(b byte) bool { return b&0xC0 != 0 }

type lengthReader struct {
	b   []byte
	off int
	err error
}

func (r *lengthReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

// points skips n compressed points of size each.
func (r *lengthReader) points(n, size int, what string) {
	if r.err != nil {
		return
	}
	if n < 0 || len(r.b)-r.off < n*size {
		r.fail("%s: %d points of %d bytes, %d bytes left", what, n, size, len(r.b)-r.off)
		return
	}
	for i := 0; i < n; i++ {
		if !compressedFlag(r.b[r.off]) {
			r.fail("%s: point %d is not in compressed form", what, i)
			return
		}
		r.off += size
	}
}

func (r *lengthReader) uint32(what string, max int) int {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.fail("%s: truncated", what)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	if int64(v) > int64(max) {
		r.fail("%s: %d, at most %d", what, v, max)
		return 0
	}
	return int(v)
}

// checkVerifyingKeyEncoding checks gnark's BN254 Groth16 verifying key
// encoding (α1, β1, β2, γ2, δ1, δ2, K, public-and-commitment-committed
// indices, commitment keys) without allocating from its length fields.
func checkVerifyingKeyEncoding(b []byte) error {
	r := &lengthReader{b: b}
	r.points(1, g1Compressed, "α")
	r.points(1, g1Compressed, "β1")
	r.points(2, g2Compressed, "β2, γ2")
	r.points(1, g1Compressed, "δ1")
	r.points(1, g2Compressed, "δ2")
	nK := r.uint32("number of K points", maxKeyPoints)
	r.points(nK, g1Compressed, "K")
	sets := r.uint32("committed index sets", maxCommittedSets)
	for i := 0; i < sets && r.err == nil; i++ {
		n := r.uint32("committed indices", maxKeyPoints)
		if r.err == nil {
			if len(b)-r.off < 8*n {
				r.fail("committed indices: %d of 8 bytes, %d bytes left", n, len(b)-r.off)
				break
			}
			r.off += 8 * n
		}
	}
	nc := r.uint32("commitment keys", maxCommitments)
	// A Pedersen verifying key is two G2 points (G and GSigmaNeg).
	r.points(2*nc, g2Compressed, "commitment keys")
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return fmt.Errorf("verifying key encoding: %w", r.err)
	}
	return nil
}

// checkProofEncoding checks gnark's BN254 Groth16 proof encoding (Ar, Bs,
// Krs, commitments, commitment proof of knowledge).
func checkProofEncoding(b []byte) error {
	r := &lengthReader{b: b}
	r.points(1, g1Compressed, "Ar")
	r.points(1, g2Compressed, "Bs")
	r.points(1, g1Compressed, "Krs")
	n := r.uint32("commitments", maxCommitments)
	r.points(n, g1Compressed, "commitments")
	r.points(1, g1Compressed, "commitment proof")
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return errors.Join(ErrBadProofEncoding, r.err)
	}
	return nil
}
