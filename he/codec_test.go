package he

import (
	"math/rand/v2"
	"testing"
)

func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range []int{1, 7, 8, 33, 59, 60, 61, 64} {
		q := uint64(1) // some modulus of exactly b bits
		if b > 1 {
			q = uint64(1)<<(b-1) + rng.Uint64N(uint64(1)<<(b-1))
		}
		for _, n := range []int{0, 1, 3, 8, 17, 1000} {
			in := make([]uint64, n)
			for i := range in {
				in[i] = rng.Uint64N(q)
			}
			buf := appendPacked(nil, in, b)
			if len(buf) != packedLen(n, b) {
				t.Fatalf("b=%d n=%d: %d bytes, want %d", b, n, len(buf), packedLen(n, b))
			}
			out := make([]uint64, n)
			rest, err := readPacked(append(buf, 0xAA), out, b, q)
			if err != nil {
				t.Fatalf("b=%d n=%d: %v", b, n, err)
			}
			if len(rest) != 1 || rest[0] != 0xAA {
				t.Fatalf("b=%d n=%d: rest %v", b, n, rest)
			}
			for i := range in {
				if in[i] != out[i] {
					t.Fatalf("b=%d n=%d: coefficient %d: %d != %d", b, n, i, out[i], in[i])
				}
			}
			if n > 0 {
				if _, err := readPacked(buf[:len(buf)-1], out, b, q); err == nil {
					t.Fatalf("b=%d n=%d: truncated input accepted", b, n)
				}
			}
		}
	}
}

func TestReadPackedRejectsOutOfRange(t *testing.T) {
	in := []uint64{5, 1000, 7}
	buf := appendPacked(nil, in, 10)
	if _, err := readPacked(buf, make([]uint64, 3), 10, 999); err == nil {
		t.Fatal("coefficient 1000 accepted with modulus 999")
	}
}
