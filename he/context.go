package he

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// Context holds compiled CKKS parameters. It is immutable and safe for
// concurrent use.
type Context struct {
	p  Parameters
	cp ckks.Parameters
}

// NewContext compiles the parameters (it generates the NTT-friendly primes).
func NewContext(p Parameters) (*Context, error) {
	cp, err := p.ckks()
	if err != nil {
		return nil, err
	}
	return &Context{p: p, cp: cp}, nil
}

// Parameters returns the literal parameters.
func (c *Context) Parameters() Parameters { return c.p }

// ModuliQ returns the ciphertext primes.
func (c *Context) ModuliQ() []uint64 { return c.cp.Q() }

// ModuliP returns the key-switching primes.
func (c *Context) ModuliP() []uint64 { return c.cp.P() }

// MaxLevel is the level of a fresh ciphertext.
func (c *Context) MaxLevel() int { return c.cp.MaxLevel() }

// N returns the ring degree.
func (c *Context) N() int { return c.cp.N() }

// inputScale is the scale of fresh ciphertexts.
func (c *Context) inputScale() rlwe.Scale {
	return rlwe.NewScale(float64(uint64(1) << c.p.LogInputScale))
}

// rotationGaloisElement returns the Galois element of a left rotation by k
// slots.
func (c *Context) rotationGaloisElement(k int) uint64 { return c.cp.GaloisElementForRotation(k) }

// Fingerprint identifies the parameters exactly (primes included), so that
// keys and ciphertexts made for other parameters are refused.
func (c *Context) Fingerprint() string {
	return fmt.Sprintf("ckks-ci/N=%d/Q=%v/P=%v/in=2^%d/blk=%d", c.cp.N(), c.cp.Q(), c.cp.P(), c.p.LogInputScale, c.p.BlockSize)
}
