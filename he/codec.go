package he

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Veil's wire formats pack each residue polynomial with exactly
// bitlen(q) bits per coefficient (60 instead of Lattigo's 64), and every
// decoder checks lengths and that each coefficient is below its modulus, so
// that malformed input gives an error, never a panic or a huge allocation.

// errTruncated is returned by decoders when the input ends early.
var errTruncated = errors.New("truncated")

// packedLen returns the bytes needed for n coefficients of b bits.
func packedLen(n, b int) int { return (n*b + 7) / 8 }

// appendPacked appends coefficients packed with b bits each (LSB first).
func appendPacked(dst []byte, coeffs []uint64, b int) []byte {
	var acc uint64
	var nacc int
	for _, c := range coeffs {
		// c < 2^b ≤ 2^60, so acc never needs more than 64+b bits split in two steps.
		acc |= c << nacc
		room := 64 - nacc
		if b >= room {
			dst = binary.LittleEndian.AppendUint64(dst, acc)
			acc = 0
			if b > room {
				acc = c >> room
			}
			nacc = b - room
		} else {
			nacc += b
		}
	}
	for nacc > 0 {
		dst = append(dst, byte(acc))
		acc >>= 8
		nacc -= 8
	}
	return dst
}

// readPacked decodes len(coeffs) coefficients of b bits from src, checking
// each against the modulus q, and returns the rest of src.
func readPacked(src []byte, coeffs []uint64, b int, q uint64) ([]byte, error) {
	need := packedLen(len(coeffs), b)
	if len(src) < need {
		return nil, errTruncated
	}
	data := src[:need]
	mask := uint64(1)<<b - 1
	bitPos := 0
	for i := range coeffs {
		byteIdx := bitPos / 8
		shift := bitPos % 8
		// Read up to 9 bytes covering b+shift ≤ 67 bits.
		var lo uint64
		var hi uint64
		for k := 0; k < 8 && byteIdx+k < len(data); k++ {
			lo |= uint64(data[byteIdx+k]) << (8 * k)
		}
		if byteIdx+8 < len(data) {
			hi = uint64(data[byteIdx+8])
		}
		v := lo >> shift
		if shift > 0 {
			v |= hi << (64 - shift)
		}
		v &= mask
		if v >= q {
			return nil, fmt.Errorf("coefficient %d is %d, not below the modulus %d", i, v, q)
		}
		coeffs[i] = v
		bitPos += b
	}
	return src[need:], nil
}

func bitLen(q uint64) int { return bits.Len64(q) }
