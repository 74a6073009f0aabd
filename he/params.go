package he

import (
	"errors"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// Parameters is the literal description of a CKKS configuration and of the
// packing used by the encrypted network. Use [DefaultParameters] unless you
// are benchmarking alternatives.
type Parameters struct {
	// LogN is log2 of the ring degree N; the conjugate-invariant ring gives
	// N real slots.
	LogN int
	// LogQ are the bit sizes of the ciphertext primes (q0 first). The
	// evaluation consumes exactly one level, so two primes are needed.
	LogQ []int
	// LogP are the bit sizes of the key-switching primes.
	LogP []int
	// LogInputScale is log2 of the scale of encrypted pixels.
	LogInputScale int
	// LogWeightScale is log2 of the scale of the first matrix's diagonals.
	LogWeightScale int
	// LogOutputWeightScale is log2 of the scale of the last matrix's
	// diagonals.
	LogOutputWeightScale int
	// BlockSize is the number of slots per image block (a power of two).
	BlockSize int
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

// DefaultParameters is Veil's CKKS configuration: N = 2^13 real slots,
// log2(QP) = 180, 128-bit security by the HE standard (see the package
// documentation for the assumption on the conjugate-invariant ring).
var DefaultParameters = Parameters{
	LogN:                 13,
	LogQ:                 []int{60, 60},
	LogP:                 []int{60},
	LogInputScale:        31,
	LogWeightScale:       15,
	LogOutputWeightScale: 18,
	BlockSize:            1024,
	LogBSGSRatio:         2,
	LogFloodSigma:        38,
	Workers:              2,
}

// heStandardMaxLogQP is the largest log2(QP) for 128-bit classical security
// with a uniform ternary secret and σ = 3.2, from Table 1 of the Homomorphic
// Encryption Standard (Albrecht et al., 2018), indexed by log2(N).
var heStandardMaxLogQP = map[int]int{10: 27, 11: 54, 12: 109, 13: 218, 14: 438, 15: 881}

// LogQP returns log2 of the product of all primes, as Lattigo generated them.
func (p Parameters) LogQP() (float64, error) {
	cp, err := p.ckks()
	if err != nil {
		return 0, err
	}
	return cp.LogQP(), nil
}

// SecurityBits returns the classical security level that the HE standard's
// table guarantees for these parameters (128), or an error if log2(QP)
// exceeds the 128-bit bound for this ring degree.
func (p Parameters) SecurityBits() (int, error) {
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
func (p Parameters) Slots() int { return 1 << p.LogN }

// Blocks returns the number of image blocks per ciphertext.
func (p Parameters) Blocks() int { return p.Slots() / p.BlockSize }

// Validate checks the parameters without building the ring.
func (p Parameters) Validate() error {
	switch {
	case p.LogN < 10 || p.LogN > 15:
		return fmt.Errorf("LogN = %d out of range [10, 15]", p.LogN)
	case len(p.LogQ) != 2:
		return fmt.Errorf("%d ciphertext primes, the evaluation needs exactly 2", len(p.LogQ))
	case len(p.LogP) < 1:
		return errors.New("no key-switching prime")
	case p.BlockSize < 1024 || p.BlockSize&(p.BlockSize-1) != 0 || p.BlockSize > p.Slots():
		return fmt.Errorf("block size %d must be a power of two in [1024, %d]", p.BlockSize, p.Slots())
	case p.LogInputScale < 10 || p.LogWeightScale < 10 || p.LogOutputWeightScale < 10:
		return errors.New("scales below 2^10 are too imprecise")
	case 2*(p.LogInputScale+p.LogWeightScale)+p.LogOutputWeightScale > p.LogQ[0]+p.LogQ[1]-10:
		return fmt.Errorf("scales 2·(%d+%d)+%d leave less than 10 bits of headroom below log2(Q) = %d",
			p.LogInputScale, p.LogWeightScale, p.LogOutputWeightScale, p.LogQ[0]+p.LogQ[1])
	case p.LogBSGSRatio < 0 || p.LogBSGSRatio > 8:
		return fmt.Errorf("LogBSGSRatio = %d out of range [0, 8] (the evaluation always uses baby-step giant-step)", p.LogBSGSRatio)
	case p.LogFloodSigma < 0 || p.LogFloodSigma > 50:
		return fmt.Errorf("LogFloodSigma = %g out of range [0, 50]", p.LogFloodSigma)
	}
	return nil
}

// ckks builds Lattigo's parameters.
func (p Parameters) ckks() (ckks.Parameters, error) {
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

// floodSigma is the flooding standard deviation.
func (p Parameters) floodSigma() float64 {
	if p.LogFloodSigma == 0 {
		return 0
	}
	return math.Exp2(p.LogFloodSigma)
}

// String describes the parameters in one line.
func (p Parameters) String() string {
	return fmt.Sprintf("CKKS conjugate-invariant LogN=%d LogQ=%v LogP=%v scales 2^%d·2^%d, 2^%d; %d blocks of %d slots; flooding σ=2^%g",
		p.LogN, p.LogQ, p.LogP, p.LogInputScale, p.LogWeightScale, p.LogOutputWeightScale, p.Blocks(), p.BlockSize, p.LogFloodSigma)
}
