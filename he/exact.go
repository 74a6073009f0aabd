package he

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// Deterministic decryption (DecryptFixed) exists for fraud proofs: every
// ledger node decrypts a disputed ciphertext with a revealed key, and all of
// them must get the same numbers, bit for bit, or they would disagree on a
// consensus rule. Lattigo's decryption itself (c0 + c1·s, the inverse NTT,
// the CRT) is integer arithmetic and already deterministic; its decoding
// (the canonical embedding, an FFT) is float64 arithmetic, whose results may
// differ between architectures (a Go compiler may fuse a·b+c into one
// rounding on arm64, ppc64 or s390x, and not on amd64). So the decoding is
// redone here in fixed point with int64 and 128-bit products only: the same
// "special FFT" as Lattigo's decoder, with the roots of unity rounded to
// 2^-62 from Lattigo's big.Float roots.

const (
	rootFrac  = 62 // roots of unity in Q62 fixed point
	headBits  = 60 // values stay below 2^headBits during the FFT
	fixedPrec = 80 // big.Float precision of the roots before rounding
)

type fixedRoots struct {
	re, im   []int64 // e^{2πik/M} for k = 0..M
	rotGroup []int
}

var rootsCache sync.Map // M -> *fixedRoots

// rootsFor returns the Q62 roots of unity of order M (Lattigo's big.Float
// roots, computed with big.Float arithmetic only, rounded) and the powers
// of 5 modulo M, both deterministic.
func rootsFor(m int) *fixedRoots {
	if r, ok := rootsCache.Load(m); ok {
		return r.(*fixedRoots)
	}
	big := ckks.GetRootsBigComplex(m, fixedPrec)
	r := &fixedRoots{re: make([]int64, m+1), im: make([]int64, m+1), rotGroup: make([]int, m>>2)}
	for k, z := range big {
		r.re[k], r.im[k] = q62(z[0]), q62(z[1])
	}
	five := 1
	for i := range r.rotGroup {
		r.rotGroup[i] = five
		five = (five * 5) & (m - 1)
	}
	rootsCache.Store(m, r)
	return r
}

// q62 rounds x in [-1, 1] to the nearest multiple of 2^-62, as an integer.
func q62(x *big.Float) int64 {
	if x == nil {
		return 0
	}
	v := new(big.Float).SetPrec(fixedPrec).SetMantExp(x, rootFrac)
	half := big.NewFloat(0.5)
	if v.Sign() < 0 {
		v.Sub(v, half)
	} else {
		v.Add(v, half)
	}
	i, _ := v.Int64() // toward zero after ±0.5: round half away from zero
	return i
}

// mulQ62 returns round(a·t / 2^62) for |a| < 2^62, |t| ≤ 2^62.
func mulQ62(a, t int64) int64 {
	neg := (a < 0) != (t < 0)
	ua, ut := uint64(a), uint64(t)
	if a < 0 {
		ua = uint64(-a)
	}
	if t < 0 {
		ut = uint64(-t)
	}
	hi, lo := bits.Mul64(ua, ut)
	lo, carry := bits.Add64(lo, 1<<(rootFrac-1), 0)
	hi += carry
	r := int64(hi<<(64-rootFrac) | lo>>rootFrac)
	if neg {
		return -r
	}
	return r
}

// ErrFixedRange is returned when a decryption has coefficients too large to
// decode in fixed point with a useful error bound (never the case for a
// fresh encryption or an evaluation result: see DecryptFixed).
var ErrFixedRange = errors.New("decryption out of the fixed-point decoder's range")

// FixedSlots are decrypted slot values in fixed point: slot j is
// Values[j] / 2^Frac, within ±Bound / 2^Frac of the exact decoding (the real
// canonical embedding of the decrypted integer polynomial, divided by the
// ciphertext's scale).
type FixedSlots struct {
	Values []int64
	Frac   uint
	Bound  int64
}

// DecryptFixed decrypts ct and decodes every slot with integer arithmetic
// only, so that every machine computes the same Values (see the comment at
// the top of this file). Slot values must stay below 2^62 / 2^frac in
// magnitude, and the decrypted coefficients below 2^(headBits - log2 N +
// 40); otherwise it returns ErrFixedRange. The error bound is the FFT's
// worst case: every butterfly rounds each product to an integer and the
// roots to 2^-62, and each of the log2(N) stages at most doubles the error
// it receives, so the slot error is below 4·N units of the scaled
// coefficients; inputs are scaled to 2^(headBits - log2 N) first, which
// for a fresh encryption at scale 2^31 puts the bound near 2^-45 of a slot.
func (s *SecretKey) DecryptFixed(ct *Ciphertext, frac uint) (*FixedSlots, error) {
	c := s.params
	if ct.params.Fingerprint() != c.Fingerprint() {
		return nil, errors.New("decrypt: ciphertext made for other parameters")
	}
	if frac > 62 {
		return nil, fmt.Errorf("decrypt: %d fractional bits, at most 62", frac)
	}
	level := ct.ct.Level()
	pt := rlwe.NewDecryptor(c.cp, s.sk).DecryptNew(ct.ct)
	ringQ := c.cp.RingQ().AtLevel(level)
	if pt.IsNTT {
		ringQ.INTT(pt.Value, pt.Value)
	}
	n := c.cp.N()
	logN := bits.Len(uint(n)) - 1
	coeffs := make([]*big.Int, n)
	for i := range coeffs {
		coeffs[i] = new(big.Int)
	}
	ringQ.PolyToBigintCentered(pt.Value, 1, coeffs)

	// Scale the coefficients so that the FFT cannot overflow: values below
	// 2^cap, and N of them sum below 2^(cap + logN + 1/2) < 2^headBits.
	capBits := headBits - logN - 1
	maxLen := 0
	for _, x := range coeffs {
		maxLen = max(maxLen, x.BitLen())
	}
	shift := maxLen - capBits // coefficients are multiplied by 2^-shift
	if shift > 40 {
		return nil, fmt.Errorf("%w: a coefficient of %d bits", ErrFixedRange, maxLen)
	}
	re := make([]int64, n)
	im := make([]int64, n)
	t := new(big.Int)
	for i, x := range coeffs {
		switch {
		case shift > 0: // round to nearest: floor((x + 2^(shift-1)) / 2^shift)
			t.Lsh(big.NewInt(1), uint(shift-1))
			t.Add(t, x)
			t.Rsh(t, uint(shift))
		default:
			t.Lsh(x, uint(-shift))
		}
		re[i] = t.Int64()
	}
	// The conjugate-invariant ring's coefficients as Lattigo's decoder
	// arranges them: v_i = c_i - i·c_{N-i}.
	for i := 1; i < n; i++ {
		im[i] = -re[n-i]
	}
	r := rootsFor(int(c.cp.RingQ().NthRoot()))
	specialFFT(re, im, n, len(r.re)-1, r)

	// slot_j = re_j·2^shift / scale; scale = mant·2^exp exactly (a float64).
	mant, exp := scaleParts(ct.ct.Scale.Float64())
	if mant == 0 {
		return nil, fmt.Errorf("%w: scale %g", ErrFixedRange, ct.ct.Scale.Float64())
	}
	e := shift + int(frac) - exp // slot·2^frac = re·2^e / mant
	out := &FixedSlots{Values: make([]int64, n), Frac: frac}
	m := new(big.Int).SetUint64(mant)
	num := new(big.Int)
	lim := new(big.Int).Lsh(big.NewInt(1), 62)
	for j := range re {
		num.SetInt64(re[j])
		v, err := divRound(num, e, m, lim)
		if err != nil {
			return nil, err
		}
		out.Values[j] = v
	}
	// The bound: 4N units of re, scaled the same way, plus the rounding of
	// the division.
	num.SetInt64(int64(4) << logN)
	b, err := divRound(num, e, m, lim)
	if err != nil {
		return nil, err
	}
	out.Bound = b + 1
	return out, nil
}

// divRound returns round(x·2^e / m) (half away from zero), or ErrFixedRange
// when its magnitude reaches lim.
func divRound(x *big.Int, e int, m, lim *big.Int) (int64, error) {
	num := new(big.Int).Set(x)
	den := new(big.Int).Set(m)
	if e >= 0 {
		num.Lsh(num, uint(e))
	} else {
		den.Lsh(den, uint(-e))
	}
	neg := num.Sign() < 0
	num.Abs(num)
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Lsh(rem, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if q.CmpAbs(lim) >= 0 {
		return 0, fmt.Errorf("%w: a slot of %d bits", ErrFixedRange, q.BitLen())
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64(), nil
}

// scaleParts splits a positive finite float64 into mant·2^exp with mant an
// integer below 2^53.
func scaleParts(x float64) (uint64, int) {
	if !(x > 0) || math.IsInf(x, 0) {
		return 0, 0
	}
	frac, exp := math.Frexp(x) // x = frac·2^exp, frac in [0.5, 1): exact
	return uint64(math.Ldexp(frac, 53)), exp - 53
}

// specialFFT is Lattigo's SpecialFFTDouble (the decoding transform) in
// fixed point: values[k] are re[k] + i·im[k]; the roots are Q62.
func specialFFT(re, im []int64, n, m int, r *fixedRoots) {
	bitReverse(re, im, n)
	logN := bits.Len(uint(n)) - 1
	logM := bits.Len(uint(m)) - 1
	for loglen := 1; loglen <= logN; loglen++ {
		length := 1 << loglen
		lenh := length >> 1
		lenq := length << 2
		logGap := logM - 2 - loglen
		mask := lenq - 1
		for i := 0; i < n; i += length {
			for j, k := 0, i; j < lenh; j, k = j+1, k+1 {
				idx := (r.rotGroup[j] & mask) << logGap
				wr, wi := r.re[idx], r.im[idx]
				vr, vi := re[k+lenh], im[k+lenh]
				tr := mulQ62(vr, wr) - mulQ62(vi, wi)
				ti := mulQ62(vr, wi) + mulQ62(vi, wr)
				ur, ui := re[k], im[k]
				re[k], im[k] = ur+tr, ui+ti
				re[k+lenh], im[k+lenh] = ur-tr, ui-ti
			}
		}
	}
}

// bitReverse permutes the first n values into bit-reversed order, as
// Lattigo's utils.BitReverseInPlaceSlice does.
func bitReverse(re, im []int64, n int) {
	var bit, j int
	for i := 1; i < n; i++ {
		bit = n >> 1
		for j >= bit {
			j -= bit
			bit >>= 1
		}
		j += bit
		if i < j {
			re[i], re[j] = re[j], re[i]
			im[i], im[j] = im[j], im[i]
		}
	}
}
