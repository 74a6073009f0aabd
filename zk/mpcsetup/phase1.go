package mpcsetup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	gio "github.com/consensys/gnark/io"
)

// Phase1 is a phase-1 (powers of τ) accumulator: gnark's mpcsetup.Phase1
// with its fields visible. Its encoding (WriteTo, ReadFrom) is gnark's,
// byte for byte, so gnark's own Phase1.ReadFrom and Verify accept what
// this writes (TestPhase1MatchesGnark); Contribute and Seal are gnark's
// arithmetic spread over every core in Jacobian coordinates, and Verify is
// gnark's check on the decoded points. gnark keeps the points unexported,
// and the ledger needs them: to seal, to truncate to a smaller domain and
// to start phase 2, without decoding 25 MB twice.
type Phase1 struct {
	// Proofs of knowledge of the last contribution to τ, α and β.
	Tau, Alpha, Beta cmpc.UpdateProof
	// SRS holds [τ^i]₁ (i < 2N-1), [ατ^i]₁, [βτ^i]₁, [τ^i]₂ (i < N) and [β]₂.
	SRS gmpc.SrsCommons
	// Challenge is the SHA-256 of the previous accumulator's encoding
	// (empty in the initial accumulator).
	Challenge []byte
}

// NewPhase1 is the initial accumulator for domain n (a power of two): every
// point is a generator. It encodes exactly as gnark's NewPhase1(n).
func NewPhase1(n uint64) (*Phase1, error) {
	if n < 2 || n&(n-1) != 0 || n > MaxDomain {
		return nil, fmt.Errorf("phase 1: domain %d is not a power of two in [2, 2^%d]", n, maxLogDomain)
	}
	_, _, g1, g2 := curve.Generators()
	p := &Phase1{}
	p.SRS.G1.Tau = fill(make([]curve.G1Affine, 2*n-1), g1)
	p.SRS.G1.AlphaTau = fill(make([]curve.G1Affine, n), g1)
	p.SRS.G1.BetaTau = fill(make([]curve.G1Affine, n), g1)
	p.SRS.G2.Tau = fill(make([]curve.G2Affine, n), g2)
	p.SRS.G2.Beta = g2
	return p, nil
}

func fill[T any](s []T, v T) []T {
	for i := range s {
		s[i] = v
	}
	return s
}

const maxLogDomain = 24

// MaxDomain bounds the domains this package accepts (2^24: a 3 GiB phase 1).
const MaxDomain = 1 << maxLogDomain

// Domain is N, the FFT domain the accumulator serves.
func (p *Phase1) Domain() uint64 { return uint64(len(p.SRS.G2.Tau)) }

// Phase1Size is the length of the encoding of a phase-1 accumulator for
// domain n: 3 update proofs, the SRS, and a challenge of 32 bytes (0 for
// the initial accumulator). A blob of any other length is refused before
// it is decoded.
func Phase1Size(n uint64, initial bool) int64 {
	size := int64(3*(curve.SizeOfG1AffineCompressed+curve.SizeOfG2AffineCompressed)) + // proofs
		8 + curve.SizeOfG2AffineCompressed + // N, [β]₂
		int64(2*n-2)*curve.SizeOfG1AffineCompressed + int64(n-1)*curve.SizeOfG2AffineCompressed + // [τ^i]₁, [τ^i]₂
		int64(2*n)*curve.SizeOfG1AffineCompressed + // [ατ^i]₁, [βτ^i]₁
		1 // challenge length
	if !initial {
		size += sha256.Size
	}
	return size
}

// WriteTo writes gnark's encoding of the accumulator.
func (p *Phase1) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, v := range []io.WriterTo{&p.Tau, &p.Alpha, &p.Beta, &p.SRS} {
		k, err := v.WriteTo(w)
		n += k
		if err != nil {
			return n, err
		}
	}
	k, err := gio.WriteBytesShort(p.Challenge, w)
	return n + k, err
}

// ReadFrom decodes gnark's encoding, checking that every point is on the
// curve and in its subgroup.
func (p *Phase1) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	for _, v := range []io.ReaderFrom{&p.Tau, &p.Alpha, &p.Beta, &p.SRS} {
		k, err := v.ReadFrom(r)
		n += k
		if err != nil {
			return n, err
		}
	}
	c, k, err := gio.ReadBytesShort(r)
	p.Challenge = c
	return n + k, err
}

// DecodePhase1 decodes an accumulator for domain n from exactly b: a blob
// of the wrong length (truncated, padded, or for another domain) is
// refused before any point is decoded, and so is one whose SRS size field
// is not n (gnark's decoder would allocate what it says).
func DecodePhase1(b []byte, n uint64) (*Phase1, error) {
	if n < 2 || n&(n-1) != 0 || n > MaxDomain {
		return nil, fmt.Errorf("phase 1: bad domain %d", n)
	}
	if int64(len(b)) != Phase1Size(n, false) && int64(len(b)) != Phase1Size(n, true) {
		return nil, fmt.Errorf("%w: %d bytes, a phase-1 accumulator for domain %d has %d", ErrSize, len(b), n, Phase1Size(n, false))
	}
	p := new(Phase1)
	r := bytes.NewReader(b)
	if err := readPhase1(r, p, n); err != nil {
		return nil, err
	}
	if r.Len() != 0 || p.Domain() != n {
		return nil, fmt.Errorf("%w: phase-1 accumulator for domain %d, want %d", ErrEncoding, p.Domain(), n)
	}
	return p, nil
}

// Errors of the decoders and verifiers, wrapped with details.
var (
	// ErrSize: a blob has the wrong length for what it claims to be.
	ErrSize = errors.New("wrong size")
	// ErrEncoding: a blob does not decode (bad points, trailing bytes).
	ErrEncoding = errors.New("bad encoding")
	// ErrNotExtending: a contribution was not made on the previous
	// accumulator (its challenge is another accumulator's hash).
	ErrNotExtending = errors.New("does not extend the previous accumulator")
	// ErrBadContribution: a proof of knowledge or a consistency check of
	// the group elements failed.
	ErrBadContribution = errors.New("contribution does not verify")
)

// Bytes is the accumulator's encoding.
func (p *Phase1) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(int(Phase1Size(p.Domain(), len(p.Challenge) == 0)))
	if _, err := p.WriteTo(&b); err != nil {
		panic(err) // writing to memory does not fail
	}
	return b.Bytes()
}

// Hash is the SHA-256 of the encoding: the next contribution's challenge.
func (p *Phase1) Hash() [32]byte { return sha256.Sum256(p.Bytes()) }

// contributorDST separates ProofChallenge from every other hash.
var contributorDST = []byte("veil/setup/v1/contributor\x00")

// ProofChallenge is what a contribution's proofs of knowledge are bound
// to: the previous accumulator's hash and, when contributor is not nil,
// the contributor's public key. The accumulator's Challenge field stays
// the previous hash (the chain), but a proof made for one contributor
// does not verify for another, so that nobody can take a contribution
// they saw in the chunk store and submit it as their own before its
// author does (the credit a ledger keeps, and the contributor a verifier
// trusts, are then the author's). With a nil contributor it is the
// previous hash: gnark's challenge, for ceremonies off the ledger.
func ProofChallenge(prev, contributor []byte) []byte {
	if contributor == nil {
		return prev
	}
	h := sha256.New()
	h.Write(contributorDST)
	h.Write(prev)
	h.Write(contributor)
	return h.Sum(nil)
}

// Contribute draws fresh τ, α, β, applies them to a copy of p and proves
// knowledge of them (gnark's Phase1.Contribute). The randomness is zeroed
// before it returns.
func (p *Phase1) Contribute(ctx context.Context) (*Phase1, error) {
	return p.ContributeAs(ctx, nil)
}

// ContributeAs is Contribute with the proofs bound to contributor's key
// (ProofChallenge); the ledger verifies them with the key that signs the
// contribution.
func (p *Phase1) ContributeAs(ctx context.Context, contributor []byte) (*Phase1, error) {
	h := p.Hash()
	next := &Phase1{Challenge: h[:]}
	pc := ProofChallenge(h[:], contributor)
	var tau, alpha, beta fr.Element
	defer func() { tau.SetZero(); alpha.SetZero(); beta.SetZero() }()
	next.Tau = cmpc.UpdateValues(&tau, pc, gmpc.DST_TAU)
	next.Alpha = cmpc.UpdateValues(&alpha, pc, gmpc.DST_ALPHA)
	next.Beta = cmpc.UpdateValues(&beta, pc, gmpc.DST_BETA)
	srs, err := updateSRS(ctx, &p.SRS, &tau, &alpha, &beta)
	if err != nil {
		return nil, err
	}
	next.SRS = *srs
	return next, nil
}

// Verify checks that next is a contribution on p, as gnark's
// Phase1.Verify does: next's challenge is p's hash, the proofs of
// knowledge of the updates to τ (through [τ]₁), α ([α]₁) and β ([β]₁,
// [β]₂) verify, and every vector is a geometric sequence with one common
// ratio. The randomised checks are wrong with probability about N/p.
func (p *Phase1) Verify(next *Phase1) error { return p.VerifyAs(next, nil) }

// VerifyAs is Verify for a contribution whose proofs are bound to
// contributor's key (ContributeAs).
func (p *Phase1) VerifyAs(next *Phase1, contributor []byte) error {
	h := p.Hash()
	if !bytes.Equal(next.Challenge, h[:]) {
		return fmt.Errorf("%w: its challenge is %x…, the previous accumulator's hash %x…", ErrNotExtending, prefix(next.Challenge), h[:8])
	}
	n := p.Domain()
	if next.Domain() != n || len(next.SRS.G1.Tau) != int(2*n-1) || len(next.SRS.G1.AlphaTau) != int(n) || len(next.SRS.G1.BetaTau) != int(n) {
		return fmt.Errorf("%w: domain %d, want %d", ErrSize, next.Domain(), n)
	}
	pc := ProofChallenge(h[:], contributor)
	if err := next.Tau.Verify(pc, gmpc.DST_TAU, cmpc.ValueUpdate{Previous: &p.SRS.G1.Tau[1], Next: &next.SRS.G1.Tau[1]}); err != nil {
		return fmt.Errorf("%w: τ: %v", ErrBadContribution, err)
	}
	if err := next.Alpha.Verify(pc, gmpc.DST_ALPHA, cmpc.ValueUpdate{Previous: p.SRS.G1.AlphaTau[0], Next: next.SRS.G1.AlphaTau[0]}); err != nil {
		return fmt.Errorf("%w: α: %v", ErrBadContribution, err)
	}
	if err := next.Beta.Verify(pc, gmpc.DST_BETA,
		cmpc.ValueUpdate{Previous: &p.SRS.G1.BetaTau[0], Next: &next.SRS.G1.BetaTau[0]},
		cmpc.ValueUpdate{Previous: &p.SRS.G2.Beta, Next: &next.SRS.G2.Beta}); err != nil {
		return fmt.Errorf("%w: β: %v", ErrBadContribution, err)
	}
	if err := cmpc.SameRatioMany(next.SRS.G1.Tau, next.SRS.G2.Tau, next.SRS.G1.AlphaTau, next.SRS.G1.BetaTau); err != nil {
		return fmt.Errorf("%w: powers: %v", ErrBadContribution, err)
	}
	return nil
}

func prefix(b []byte) []byte { return b[:min(8, len(b))] }

// phase1BeaconDST is gnark's domain-separation tag for the phase-1 seal.
var phase1BeaconDST = []byte("Groth16 MPC Setup - Phase 1")

// Seal applies the beacon's public contribution to the last accumulator
// and returns the SRS that phase 2 starts from, exactly as gnark's
// Phase1.Seal (which VerifyPhase1 ends with); p is not modified.
func (p *Phase1) Seal(ctx context.Context, beacon []byte) (*gmpc.SrsCommons, error) {
	h := p.Hash()
	c := cmpc.BeaconContributions(h[:], phase1BeaconDST, beacon, 3)
	return updateSRS(ctx, &p.SRS, &c[0], &c[1], &c[2])
}

// updateSRS returns srs with τ, α, β multiplied by the given values
// (gnark's SrsCommons.update): [τ^i] by τ'^i, [ατ^i] by α'τ'^i, [βτ^i] by
// β'τ'^i, [β]₂ by β'.
func updateSRS(ctx context.Context, srs *gmpc.SrsCommons, tau, alpha, beta *fr.Element) (*gmpc.SrsCommons, error) {
	n := len(srs.G2.Tau)
	pw := make([]fr.Element, len(srs.G1.Tau))
	pw[0].SetOne()
	for i := 1; i < len(pw); i++ {
		pw[i].Mul(&pw[i-1], tau)
	}
	a := make([]fr.Element, n)
	b := make([]fr.Element, n)
	for i := 0; i < n; i++ {
		a[i].Mul(&pw[i], alpha)
		b[i].Mul(&pw[i], beta)
	}
	defer func() { zero(pw); zero(a); zero(b) }()
	out := new(gmpc.SrsCommons)
	var err error
	if out.G1.Tau, err = scaleG1(ctx, srs.G1.Tau, pw); err != nil {
		return nil, err
	}
	if out.G1.AlphaTau, err = scaleG1(ctx, srs.G1.AlphaTau, a); err != nil {
		return nil, err
	}
	if out.G1.BetaTau, err = scaleG1(ctx, srs.G1.BetaTau, b); err != nil {
		return nil, err
	}
	if out.G2.Tau, err = scaleG2(ctx, srs.G2.Tau, pw[:n]); err != nil {
		return nil, err
	}
	var bb big.Int
	out.G2.Beta.ScalarMultiplication(&srs.G2.Beta, beta.BigInt(&bb))
	return out, nil
}

func zero(s []fr.Element) {
	for i := range s {
		s[i].SetZero()
	}
}

// scaleG1 returns pts[i]·s[i] for every i, on every core.
func scaleG1(ctx context.Context, pts []curve.G1Affine, s []fr.Element) ([]curve.G1Affine, error) {
	out := make([]curve.G1Affine, len(pts))
	err := parallelCtx(ctx, len(pts), func(lo, hi int) {
		jac := make([]curve.G1Jac, hi-lo)
		var bi big.Int
		for i := lo; i < hi; i++ {
			if s[i].IsOne() {
				jac[i-lo].FromAffine(&pts[i])
				continue
			}
			jac[i-lo].FromAffine(&pts[i])
			jac[i-lo].ScalarMultiplication(&jac[i-lo], s[i].BigInt(&bi))
		}
		copy(out[lo:hi], curve.BatchJacobianToAffineG1(jac))
	})
	return out, err
}

// scaleG2 returns pts[i]·s[i] for every i, on every core.
func scaleG2(ctx context.Context, pts []curve.G2Affine, s []fr.Element) ([]curve.G2Affine, error) {
	out := make([]curve.G2Affine, len(pts))
	err := parallelCtx(ctx, len(pts), func(lo, hi int) {
		var j curve.G2Jac
		var bi big.Int
		for i := lo; i < hi; i++ {
			if s[i].IsOne() {
				out[i] = pts[i]
				continue
			}
			j.FromAffine(&pts[i])
			j.ScalarMultiplication(&j, s[i].BigInt(&bi))
			out[i].FromJacobian(&j)
		}
	})
	return out, err
}
