package he

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// ParametersLiteral is the CKKS configuration a client and a server share:
// everything a client needs to make keys, encrypt and decrypt, and nothing
// about how the server evaluates (see [EvaluationSettings]). It travels in
// its canonical binary encoding ([ParametersLiteral.MarshalBinary]); a
// client checks it on its own ([ParametersLiteral.SecurityBits]) before it
// trusts a server with a ciphertext. [NewParameters] compiles it.
type ParametersLiteral struct {
	// LogN is log2 of the ring degree N; the conjugate-invariant ring gives
	// N real slots.
	LogN int
	// LogQ are the bit sizes of the ciphertext primes (q0 first). The
	// default network's evaluation consumes exactly one level, so it needs
	// two primes; a general network one more per activation.
	LogQ []int
	// LogP are the bit sizes of the key-switching primes.
	LogP []int
	// LogInputScale is log2 of the scale of encrypted pixels.
	LogInputScale int
	// BlockSize is the number of slots per image block (a power of two).
	BlockSize int
}

// DefaultParametersLiteral is Veil's CKKS configuration: N = 2^13 real
// slots, log2(QP) = 180, 128-bit security by the HE standard (see the
// package documentation for the assumption on the conjugate-invariant
// ring), 8 blocks of 1024 slots.
var DefaultParametersLiteral = ParametersLiteral{
	LogN:          13,
	LogQ:          []int{60, 60},
	LogP:          []int{60},
	LogInputScale: 31,
	BlockSize:     1024,
}

// EvaluationSettings are the server's own choices for evaluating a network
// under a [ParametersLiteral]: how it scales the plaintext weights, how it
// splits the first matrix product, how many goroutines it uses and how much
// flooding noise it adds. A client never needs them.
type EvaluationSettings struct {
	// LogWeightScale is log2 of the scale of the first matrix's diagonals.
	LogWeightScale int
	// LogOutputWeightScale is log2 of the scale of the last matrix's
	// diagonals.
	LogOutputWeightScale int
	// LogBSGSRatio is log2 of the ratio of giant steps to baby steps in the
	// first matrix product (see Lattigo's lintrans).
	LogBSGSRatio int
	// Workers is the number of goroutines one evaluation uses.
	Workers int
	// LogFloodSigma is log2 of the standard deviation of the flooding noise
	// added to the result for circuit privacy; 0 disables flooding (tests of
	// the noise budget only).
	LogFloodSigma float64
}

// DefaultEvaluationSettings are the settings Veil's measurements use with
// [DefaultParametersLiteral]: flooding σ = 2^38, both cores.
var DefaultEvaluationSettings = EvaluationSettings{
	LogWeightScale:       15,
	LogOutputWeightScale: 18,
	LogBSGSRatio:         2,
	Workers:              2,
	LogFloodSigma:        38,
}

// heStandardMaxLogQP is the largest log2(QP) for 128-bit classical security
// with a uniform ternary secret and σ = 3.2, from Table 1 of the Homomorphic
// Encryption Standard (Albrecht et al., 2018), indexed by log2(N).
var heStandardMaxLogQP = map[int]int{10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881}

// Bounds on a literal, so that a decoded one cannot ask for absurd rings.
const (
	minLogN, maxLogN           = 10, 15
	minPrimeBits, maxPrimeBits = 20, 61
	maxKeySwitchingPrimes      = 8
	maxCiphertextPrimes        = 8
	minLogScale                = 10
)

// LogQP returns log2 of the product of all primes, as Lattigo generates
// them.
func (p ParametersLiteral) LogQP() (float64, error) {
	cp, err := p.ckks()
	if err != nil {
		return 0, err
	}
	return cp.LogQP(), nil
}

// SecurityBits returns the classical security level that the HE standard's
// table guarantees for these parameters (128), or an error if log2(QP)
// exceeds the 128-bit bound for this ring degree.
func (p ParametersLiteral) SecurityBits() (int, error) {
	bound, ok := heStandardMaxLogQP[p.LogN]
	if !ok {
		return 0, fmt.Errorf("LogN = %d is not in the HE standard's table", p.LogN)
	}
	logQP, err := p.LogQP()
	if err != nil {
		return 0, err
	}
	if logQP > float64(bound) {
		return 0, fmt.Errorf("log2(QP) = %.1f exceeds %d, the 128-bit bound for N = 2^%d", logQP, bound, p.LogN)
	}
	return 128, nil
}

// Slots returns the number of real slots of a ciphertext.
func (p ParametersLiteral) Slots() int { return 1 << p.LogN }

// Blocks returns the number of image blocks per ciphertext.
func (p ParametersLiteral) Blocks() int { return p.Slots() / p.BlockSize }

// Validate checks the literal without building the ring.
func (p ParametersLiteral) Validate() error {
	switch {
	case p.LogN < minLogN || p.LogN > maxLogN:
		return fmt.Errorf("LogN = %d out of range [%d, %d]", p.LogN, minLogN, maxLogN)
	case len(p.LogQ) < 1:
		return errors.New("no ciphertext prime")
	case len(p.LogQ) > maxCiphertextPrimes:
		return fmt.Errorf("%d ciphertext primes, more than %d", len(p.LogQ), maxCiphertextPrimes)
	case len(p.LogP) < 1:
		return errors.New("no key-switching prime")
	case len(p.LogP) > maxKeySwitchingPrimes:
		return fmt.Errorf("%d key-switching primes, more than %d", len(p.LogP), maxKeySwitchingPrimes)
	case p.BlockSize < 1024 || p.BlockSize&(p.BlockSize-1) != 0 || p.BlockSize > p.Slots():
		return fmt.Errorf("block size %d must be a power of two in [1024, %d]", p.BlockSize, p.Slots())
	case p.LogInputScale < minLogScale:
		return errors.New("scales below 2^10 are too imprecise")
	case p.LogInputScale >= sum(p.LogQ):
		return fmt.Errorf("input scale 2^%d does not fit below log2(Q) = %d", p.LogInputScale, sum(p.LogQ))
	}
	for _, b := range append(append([]int(nil), p.LogQ...), p.LogP...) {
		if b < minPrimeBits || b > maxPrimeBits {
			return fmt.Errorf("prime of %d bits out of range [%d, %d]", b, minPrimeBits, maxPrimeBits)
		}
	}
	return nil
}

// Validate checks the settings against the literal they evaluate under:
// the scales of a result, 2·(input + weights) + output weights, must leave
// 10 bits of headroom below log2(Q).
func (s EvaluationSettings) Validate(p ParametersLiteral) error {
	if err := p.Validate(); err != nil {
		return err
	}
	switch {
	case len(p.LogQ) != 2:
		return fmt.Errorf("%d ciphertext primes, the default evaluation needs exactly 2 (general networks choose their own: CompileGeneral)", len(p.LogQ))
	case s.LogWeightScale < minLogScale || s.LogOutputWeightScale < minLogScale:
		return errors.New("scales below 2^10 are too imprecise")
	case 2*(p.LogInputScale+s.LogWeightScale)+s.LogOutputWeightScale > p.LogQ[0]+p.LogQ[1]-10:
		return fmt.Errorf("scales 2·(%d+%d)+%d leave less than 10 bits of headroom below log2(Q) = %d",
			p.LogInputScale, s.LogWeightScale, s.LogOutputWeightScale, p.LogQ[0]+p.LogQ[1])
	case s.LogBSGSRatio < 0 || s.LogBSGSRatio > 8:
		return fmt.Errorf("LogBSGSRatio = %d out of range [0, 8] (the evaluation always uses baby-step giant-step)", s.LogBSGSRatio)
	case s.LogFloodSigma < 0 || s.LogFloodSigma > 50:
		return fmt.Errorf("LogFloodSigma = %g out of range [0, 50]", s.LogFloodSigma)
	case s.Workers < 0:
		return fmt.Errorf("%d workers", s.Workers)
	}
	return nil
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

// floodSigma is the flooding standard deviation.
func (s EvaluationSettings) floodSigma() float64 {
	if s.LogFloodSigma == 0 {
		return 0
	}
	return math.Exp2(s.LogFloodSigma)
}

// ckks builds Lattigo's parameters.
func (p ParametersLiteral) ckks() (ckks.Parameters, error) {
	if err := p.Validate(); err != nil {
		return ckks.Parameters{}, fmt.Errorf("CKKS parameters: %w", err)
	}
	cp, err := ckks.NewParametersFromLiteral(ckks.ParametersLiteral{
		LogN:            p.LogN,
		LogQ:            p.LogQ,
		LogP:            p.LogP,
		RingType:        ring.ConjugateInvariant,
		LogDefaultScale: p.LogInputScale,
	})
	if err != nil {
		return ckks.Parameters{}, fmt.Errorf("CKKS parameters: %w", err)
	}
	return cp, nil
}

// String describes the literal in one line.
func (p ParametersLiteral) String() string {
	return fmt.Sprintf("CKKS conjugate-invariant LogN=%d LogQ=%v LogP=%v input scale 2^%d; %d blocks of %d slots",
		p.LogN, p.LogQ, p.LogP, p.LogInputScale, p.Blocks(), p.BlockSize)
}

// String describes the settings in one line.
func (s EvaluationSettings) String() string {
	return fmt.Sprintf("weight scales 2^%d, 2^%d; BSGS ratio 2^%d; %d workers; flooding σ=2^%g",
		s.LogWeightScale, s.LogOutputWeightScale, s.LogBSGSRatio, s.Workers, s.LogFloodSigma)
}

// Canonical encoding of a literal (one byte per field; every field is
// small): magic "VPL1", LogN, len(LogQ), LogQ..., len(LogP), LogP...,
// LogInputScale, log2(BlockSize). Equal literals encode to equal bytes.
const literalMagic = "VPL1"

// ErrParameters is wrapped by every error decoding a literal.
var ErrParameters = errors.New("invalid CKKS parameters")

// MarshalBinary encodes a valid literal canonically.
func (p ParametersLiteral) MarshalBinary() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("encode CKKS parameters: %w", err)
	}
	buf := append([]byte(literalMagic), byte(p.LogN), byte(len(p.LogQ)))
	for _, q := range p.LogQ {
		buf = append(buf, byte(q))
	}
	buf = append(buf, byte(len(p.LogP)))
	for _, q := range p.LogP {
		buf = append(buf, byte(q))
	}
	return append(buf, byte(p.LogInputScale), byte(bits.TrailingZeros(uint(p.BlockSize)))), nil
}

// UnmarshalParametersLiteral decodes a canonical encoding and validates the
// literal. It refuses trailing bytes, so a literal has exactly one encoding.
func UnmarshalParametersLiteral(data []byte) (ParametersLiteral, error) {
	bad := func(format string, a ...any) (ParametersLiteral, error) {
		return ParametersLiteral{}, fmt.Errorf("%w: %s", ErrParameters, fmt.Sprintf(format, a...))
	}
	if !bytes.HasPrefix(data, []byte(literalMagic)) {
		return bad("bad magic")
	}
	r := data[len(literalMagic):]
	next := func() (int, bool) {
		if len(r) == 0 {
			return 0, false
		}
		v := int(r[0])
		r = r[1:]
		return v, true
	}
	list := func() ([]int, bool) {
		n, ok := next()
		if !ok || n > len(r) {
			return nil, false
		}
		out := make([]int, n)
		for i := range out {
			out[i], _ = next()
		}
		return out, true
	}
	var p ParametersLiteral
	var ok bool
	if p.LogN, ok = next(); !ok {
		return bad("truncated")
	}
	if p.LogQ, ok = list(); !ok {
		return bad("truncated ciphertext primes")
	}
	if p.LogP, ok = list(); !ok {
		return bad("truncated key-switching primes")
	}
	if p.LogInputScale, ok = next(); !ok {
		return bad("truncated input scale")
	}
	logBlock, ok := next()
	if !ok {
		return bad("truncated block size")
	}
	if len(r) != 0 {
		return bad("%d trailing bytes", len(r))
	}
	if logBlock > maxLogN {
		return bad("block size 2^%d", logBlock)
	}
	p.BlockSize = 1 << logBlock
	if err := p.Validate(); err != nil {
		return bad("%v", err)
	}
	return p, nil
}

// Parameters are compiled CKKS parameters: a [ParametersLiteral] with its
// NTT-friendly primes generated. They are immutable and safe for
// concurrent use.
type Parameters struct {
	lit ParametersLiteral
	cp  ckks.Parameters
}

// NewParameters compiles a literal (it generates the primes).
func NewParameters(lit ParametersLiteral) (*Parameters, error) {
	cp, err := lit.ckks()
	if err != nil {
		return nil, err
	}
	return &Parameters{lit: lit, cp: cp}, nil
}

// Literal returns the literal the parameters were compiled from.
func (c *Parameters) Literal() ParametersLiteral { return c.lit }

// ModuliQ returns the ciphertext primes.
func (c *Parameters) ModuliQ() []uint64 { return c.cp.Q() }

// ModuliP returns the key-switching primes.
func (c *Parameters) ModuliP() []uint64 { return c.cp.P() }

// MaxLevel is the level of a fresh ciphertext.
func (c *Parameters) MaxLevel() int { return c.cp.MaxLevel() }

// N returns the ring degree.
func (c *Parameters) N() int { return c.cp.N() }

// inputScale is the scale of fresh ciphertexts.
// checkFreshInput refuses what a server must not evaluate: a ciphertext or
// keys made for other parameters, or a ciphertext that is not fresh
// (another level or scale than a client's encryption gives).
func (c *Parameters) checkFreshInput(in *Ciphertext, keys *EvaluationKeys) error {
	if in.params.Fingerprint() != c.Fingerprint() || keys.params.Fingerprint() != c.Fingerprint() {
		return fmt.Errorf("%w: made for other parameters", ErrInput)
	}
	if in.ct.Level() != c.MaxLevel() {
		return fmt.Errorf("%w: level %d, want a fresh ciphertext at level %d", ErrInput, in.ct.Level(), c.MaxLevel())
	}
	if in.ct.Scale.Cmp(c.inputScale()) != 0 {
		return fmt.Errorf("%w: scale 2^%.2f, want 2^%d", ErrInput, in.ct.LogScale(), c.lit.LogInputScale)
	}
	return nil
}

func (c *Parameters) inputScale() rlwe.Scale {
	return rlwe.NewScale(float64(uint64(1) << c.lit.LogInputScale))
}

// rotationGaloisElement returns the Galois element of a left rotation by k
// slots.
func (c *Parameters) rotationGaloisElement(k int) uint64 { return c.cp.GaloisElementForRotation(k) }

// Fingerprint identifies the parameters exactly (primes included), so that
// keys and ciphertexts made for other parameters are refused.
func (c *Parameters) Fingerprint() string {
	return fmt.Sprintf("ckks-ci/N=%d/Q=%v/P=%v/in=2^%d/blk=%d", c.cp.N(), c.cp.Q(), c.cp.P(), c.lit.LogInputScale, c.lit.BlockSize)
}
