package he

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring/ringqp"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"
)

// Ciphertext is an encrypted vector of slots.
type Ciphertext struct {
	params *Parameters
	ct     *rlwe.Ciphertext
	// seed, when set, generated the uniform second component of a fresh
	// secret-key encryption: the wire form then carries the seed instead of
	// the polynomial, halving the upload.
	seed []byte
}

// Level returns the ciphertext's level.
func (c *Ciphertext) Level() int { return c.ct.Level() }

// LogScale returns log2 of the ciphertext's scale.
func (c *Ciphertext) LogScale() float64 { return c.ct.LogScale() }

// Scale returns the ciphertext's scale exactly as its wire form holds it.
func (c *Ciphertext) Scale() float64 { return c.ct.Scale.Float64() }

// Wire format (all integers little-endian):
//
//	magic   "VCT1"
//	kind    1 byte: 1 = seeded (c1 regenerated from a 32-byte seed), 2 = full
//	level   1 byte
//	scale   8 bytes, float64 bits
//	seed    32 bytes (seeded only)
//	c0, c1  each (level+1) residues of N coefficients, bitlen(q_i) bits each
//	        (c1 only in the full form)
const (
	ctMagic      = "VCT1"
	ctKindSeeded = 1
	ctKindFull   = 2
	seedLen      = 32
	ctHeaderLen  = 4 + 1 + 1 + 8
)

// MarshalBinary encodes the ciphertext in Veil's wire format.
func (c *Ciphertext) MarshalBinary() ([]byte, error) {
	level := c.ct.Level()
	kind := byte(ctKindFull)
	if c.seed != nil {
		kind = ctKindSeeded
	}
	buf := make([]byte, 0, c.wireSize())
	buf = append(buf, ctMagic...)
	buf = append(buf, kind, byte(level))
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(c.ct.Scale.Float64()))
	polys := 2
	if c.seed != nil {
		buf = append(buf, c.seed...)
		polys = 1
	}
	q := c.params.ModuliQ()
	for k := 0; k < polys; k++ {
		for i := 0; i <= level; i++ {
			buf = appendPacked(buf, c.ct.Value[k].Coeffs[i], bitLen(q[i]))
		}
	}
	return buf, nil
}

func (c *Ciphertext) wireSize() int {
	n := ctHeaderLen
	polys := 2
	if c.seed != nil {
		n += seedLen
		polys = 1
	}
	for i := 0; i <= c.ct.Level(); i++ {
		n += polys * packedLen(c.params.N(), bitLen(c.params.ModuliQ()[i]))
	}
	return n
}

// ErrCiphertext is wrapped by every ciphertext decoding error.
var ErrCiphertext = errors.New("invalid ciphertext")

// UnmarshalCiphertext decodes a ciphertext in Veil's wire format and checks
// it against these parameters: exact length, level, scale finite and
// positive, every coefficient below its modulus.
func (c *Parameters) UnmarshalCiphertext(data []byte) (*Ciphertext, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCiphertext, fmt.Sprintf(format, a...))
	}
	if len(data) < ctHeaderLen {
		return nil, bad("%d bytes, shorter than the %d-byte header", len(data), ctHeaderLen)
	}
	if !bytes.Equal(data[:4], []byte(ctMagic)) {
		return nil, bad("bad magic %q", data[:4])
	}
	kind, level := data[4], int(data[5])
	if kind != ctKindSeeded && kind != ctKindFull {
		return nil, bad("unknown kind %d", kind)
	}
	if level > c.MaxLevel() {
		return nil, bad("level %d above the maximum %d of these parameters", level, c.MaxLevel())
	}
	scale := math.Float64frombits(binary.LittleEndian.Uint64(data[6:14]))
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 1 || scale > math.Exp2(200) {
		return nil, bad("scale %g out of range", scale)
	}
	out := &Ciphertext{params: c, ct: ckks.NewCiphertext(c.cp, 1, level)}
	out.ct.Scale = rlwe.NewScale(scale)
	rest := data[ctHeaderLen:]
	polys := 2
	if kind == ctKindSeeded {
		if len(rest) < seedLen {
			return nil, bad("truncated seed")
		}
		out.seed = append([]byte(nil), rest[:seedLen]...)
		rest = rest[seedLen:]
		polys = 1
	}
	if want := out.wireSize() - ctHeaderLen - len(out.seed); len(rest) != want {
		return nil, bad("%d bytes of coefficients, want %d for level %d", len(rest), want, level)
	}
	q := c.ModuliQ()
	var err error
	for k := 0; k < polys; k++ {
		for i := 0; i <= level; i++ {
			if rest, err = readPacked(rest, out.ct.Value[k].Coeffs[i], bitLen(q[i]), q[i]); err != nil {
				return nil, bad("polynomial %d residue %d: %v", k, i, err)
			}
		}
	}
	if out.seed != nil {
		prng, err := sampling.NewKeyedPRNG(out.seed)
		if err != nil {
			return nil, bad("seed: %v", err)
		}
		// The client's encryptor drew c1 with a uniform sampler on this
		// keyed PRNG and nothing else; drawing again gives the same c1.
		ringqp.NewUniformSampler(prng, *c.cp.RingQP()).AtLevel(level, -1).Read(ringqp.Poly{Q: out.ct.Value[1]})
	}
	return out, nil
}

// newSeed returns a fresh random seed.
func newSeed() ([]byte, error) {
	s := make([]byte, seedLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("random seed: %w", err)
	}
	return s, nil
}
