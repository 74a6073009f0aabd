package mpcsetup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/pedersen"
	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	"github.com/consensys/gnark-crypto/utils"
	"github.com/consensys/gnark/backend/groth16"
	g16 "github.com/consensys/gnark/backend/groth16/bn254"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"
)

// Phase 2 of a multi-party ceremony, in the form a ledger can check.
//
// A ceremony starts from a Phase2Start: gnark's initial Phase2 accumulator
// for the circuit (δ = σ = 1) together with [K_j]₁ of the public wires
// (gnark's Phase2Evaluations.G1.VKK), which the verifying key needs.
// Computing it needs the Lagrange basis of the sealed phase-1 SRS (a group
// FFT, minutes at 2^17); CheckPhase2Start verifies a claimed one in
// seconds from the monomial SRS alone. Contributions are gnark's Phase2
// objects, checked with gnark's Phase2.Verify. DeriveVerifyingKey gives the
// verifying key gnark's Phase2.Seal would give, from the last accumulator,
// the beacon and the start, without the proving key's evaluations; the
// prover makes the proving key with ProvingKeyFromTranscript.

// Phase2Start opens a phase-2 ceremony.
type Phase2Start struct {
	Acc *gmpc.Phase2     // the initial accumulator
	VKK []curve.G1Affine // [βA_j(τ) + αB_j(τ) + C_j(τ)]₁ for the public and commitment wires
}

// WriteTo writes gnark's encoding of the accumulator, then VKK.
func (s *Phase2Start) WriteTo(w io.Writer) (int64, error) {
	n, err := s.Acc.WriteTo(w)
	if err != nil {
		return n, err
	}
	enc := curve.NewEncoder(w)
	err = enc.Encode(s.VKK)
	return n + enc.BytesWritten(), err
}

// Bytes is the encoding of s.
func (s *Phase2Start) Bytes() []byte {
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// shape is what a circuit's phase-2 objects look like: the sizes its
// accumulators must have.
type shape struct {
	n           int // domain
	pkk         int
	ckk         []int
	vkk         int
	commitments constraint.Groth16Commitments
	nbPublic    int
	nWires      int
	// class[j] is where wire j's K goes: -1 PKK, -2 VKK, c >= 0 CKK[c].
	class []int
}

func shapeOf(ccs *cs.R1CS, n int) (*shape, error) {
	if n < ccs.GetNbConstraints() {
		return nil, fmt.Errorf("phase 2: %d constraints do not fit a domain of %d", ccs.GetNbConstraints(), n)
	}
	commitments, ok := ccs.CommitmentInfo.(constraint.Groth16Commitments)
	if !ok {
		return nil, errors.New("phase 2: not a Groth16 constraint system")
	}
	nbInternal, nbSecret, nbPublic := ccs.GetNbVariables()
	s := &shape{n: n, commitments: commitments, nbPublic: nbPublic, nWires: nbInternal + nbSecret + nbPublic, ckk: make([]int, len(commitments))}
	committedBy := make(map[int]int)
	for c := range commitments {
		for _, w := range commitments[c].PrivateCommitted {
			committedBy[w] = c
		}
	}
	isCommitmentWire := make(map[int]bool)
	for _, c := range commitments {
		isCommitmentWire[c.CommitmentIndex] = true
	}
	s.class = make([]int, s.nWires)
	for j := 0; j < s.nWires; j++ {
		if c, ok := committedBy[j]; ok {
			s.class[j] = c
			s.ckk[c]++
		} else if j < nbPublic || isCommitmentWire[j] {
			s.class[j] = -2
			s.vkk++
		} else {
			s.class[j] = -1
			s.pkk++
		}
	}
	return s, nil
}

// startSize is the length of the encoding of a Phase2Start of this shape.
func (s *shape) startSize() int64 {
	g1, g2 := int64(curve.SizeOfG1AffineCompressed), int64(curve.SizeOfG2AffineCompressed)
	nc := int64(len(s.commitments))
	size := int64(2) + g1 + (4 + g1*int64(s.pkk)) + (4 + g1*int64(s.n-1)) + g2 // nb commitments, δ₁, PKK, Z, δ₂
	for _, k := range s.ckk {
		size += 4 + g1*int64(k)
	}
	size += nc * g2              // σ
	size += (g1 + g2) * (1 + nc) // δ and σ proofs
	size += 1                    // empty challenge
	size += 4 + g1*int64(s.vkk)  // VKK
	return size
}

// contributionSize is the length of every contribution to a phase 2 of
// this shape: the start's accumulator (without VKK) with a 32-byte
// challenge.
func (s *shape) contributionSize() int64 {
	return s.startSize() - (4 + int64(curve.SizeOfG1AffineCompressed)*int64(s.vkk)) + sha256.Size
}

// DecodePhase2Start decodes the start of a ceremony for ccs on a domain of
// n from exactly b (length checked first, then every list length inside
// before its list is allocated).
func DecodePhase2Start(b []byte, ccs *cs.R1CS, n int) (*Phase2Start, error) {
	sh, err := shapeOf(ccs, n)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != sh.startSize() {
		return nil, fmt.Errorf("%w: %d bytes, the start of a phase 2 for this circuit has %d", ErrSize, len(b), sh.startSize())
	}
	r := bytes.NewReader(b)
	acc, err := readPhase2(r, sh.acc())
	if err != nil {
		return nil, fmt.Errorf("phase-2 start: %w", err)
	}
	s := &Phase2Start{Acc: acc}
	if err := expectLen(r, sh.vkk, "VKK"); err != nil {
		return nil, fmt.Errorf("phase-2 start: %w", err)
	}
	if err := curve.NewDecoder(r).Decode(&s.VKK); err != nil {
		return nil, fmt.Errorf("%w: phase-2 start: %v", ErrEncoding, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrEncoding, r.Len())
	}
	return s, nil
}

// TruncateSRS returns the part of a phase-1 SRS for a domain n up to its
// own: the first 2n-1 powers in G1, n in G2 and of ατ^i, βτ^i. Powers of τ
// serve every smaller domain, so one phase 1 serves every circuit up to
// its size. The slices share memory with srs.
func TruncateSRS(srs *gmpc.SrsCommons, n int) (*gmpc.SrsCommons, error) {
	if n < 2 || n&(n-1) != 0 || n > len(srs.G2.Tau) {
		return nil, fmt.Errorf("phase 1 of domain %d cannot serve a domain of %d", len(srs.G2.Tau), n)
	}
	t := new(gmpc.SrsCommons)
	t.G1.Tau = srs.G1.Tau[:2*n-1]
	t.G1.AlphaTau = srs.G1.AlphaTau[:n]
	t.G1.BetaTau = srs.G1.BetaTau[:n]
	t.G2.Tau = srs.G2.Tau[:n]
	t.G2.Beta = srs.G2.Beta
	return t, nil
}

// NewPhase2Start computes the start of a ceremony for ccs from the sealed
// SRS (truncated to the circuit's domain) and its Lagrange basis, and the
// evaluations the proving key will need.
func NewPhase2Start(ctx context.Context, ccs *cs.R1CS, srs *gmpc.SrsCommons, lag *lagrangeBasis) (*Phase2Start, *gmpc.Phase2Evaluations, error) {
	p, evals, err := initPhase2(ctx, ccs, srs, lag, nil)
	if err != nil {
		return nil, nil, err
	}
	return &Phase2Start{Acc: p, VKK: slices.Clone(evals.G1.VKK)}, evals, nil
}

var phase2CheckDST = []byte("veil/setup/v1/phase2-start-check\x00")

// CheckPhase2Start verifies that s is exactly what NewPhase2Start computes
// for ccs on srs (truncated to the circuit's domain), without the Lagrange
// basis. srsID names the SRS (e.g. the hash of the last phase-1
// accumulator and the beacon) and, with the start's own hash, seeds the
// random linear combination (Fiat–Shamir), so every node makes the same
// check:
//
//   - δ, σ are the generators, the proofs are empty, the challenge is
//     empty, and Z is [τ^(i+n) - τ^i]₁ bit-reversed (recomputed);
//   - every wire's claimed K_j = [β·A_j(τ) + α·B_j(τ) + C_j(τ)]₁ (in PKK,
//     the commitment bases or VKK): for ρ from the hash,
//     Σ_j ρ^j·K_j = [β·U(τ) + α·V(τ) + W(τ)]₁ where U, V, W interpolate
//     u_i = Σ_j ρ^j·a_ij, v_i, w_i on the domain. Their monomial
//     coefficients come from an inverse FFT over the scalars, so the right
//     side is three multi-scalar multiplications over the monomial SRS. A
//     wrong K passes with probability at most (wires)/p.
func CheckPhase2Start(ctx context.Context, ccs *cs.R1CS, srs *gmpc.SrsCommons, srsID []byte, s *Phase2Start) error {
	n := len(srs.G1.AlphaTau)
	sh, err := shapeOf(ccs, n)
	if err != nil {
		return err
	}
	p := s.Acc
	nc := len(sh.commitments)
	if len(p.Parameters.G1.PKK) != sh.pkk || len(p.Parameters.G1.Z) != n-1 || len(s.VKK) != sh.vkk ||
		len(p.Parameters.G1.SigmaCKK) != nc || len(p.Parameters.G2.Sigma) != nc || len(p.Sigmas) != nc {
		return fmt.Errorf("%w: the phase-2 start has the wrong shape for this circuit", ErrWrongCircuit)
	}
	for c := range nc {
		if len(p.Parameters.G1.SigmaCKK[c]) != sh.ckk[c] {
			return fmt.Errorf("%w: commitment %d has %d bases, the circuit %d", ErrWrongCircuit, c, len(p.Parameters.G1.SigmaCKK[c]), sh.ckk[c])
		}
	}
	_, _, g1, g2 := curve.Generators()
	if !p.Parameters.G1.Delta.Equal(&g1) || !p.Parameters.G2.Delta.Equal(&g2) || len(p.Challenge) != 0 {
		return fmt.Errorf("%w: δ is not 1 or the challenge is not empty", ErrWrongCircuit)
	}
	var zeroProof cmpc.UpdateProof
	zb := proofBytes(&zeroProof)
	if !bytes.Equal(proofBytes(&p.Delta), zb) {
		return fmt.Errorf("%w: the start carries a δ proof", ErrWrongCircuit)
	}
	for c := range nc {
		if !p.Parameters.G2.Sigma[c].Equal(&g2) || !bytes.Equal(proofBytes(&p.Sigmas[c]), zb) {
			return fmt.Errorf("%w: σ[%d] is not 1", ErrWrongCircuit, c)
		}
	}
	// Z, recomputed.
	z := make([]curve.G1Jac, n)
	parallel(n-1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			z[i].FromAffine(&srs.G1.Tau[i+n])
			var t curve.G1Affine
			t.Neg(&srs.G1.Tau[i])
			z[i].AddMixed(&t)
		}
	})
	z[n-1].X.SetOne()
	z[n-1].Y.SetOne()
	za := curve.BatchJacobianToAffineG1(z)
	bitReverse(za)
	for i := 0; i < n-1; i++ {
		if !za[i].Equal(&p.Parameters.G1.Z[i]) {
			return fmt.Errorf("%w: Z[%d] is not [τ^(i+n) - τ^i]", ErrWrongCircuit, i)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Every wire's K by one random linear combination.
	h := sha256.New()
	h.Write(phase2CheckDST)
	h.Write(srsID)
	s.WriteTo(h)
	seed := h.Sum(nil)
	var rho fr.Element
	rho.SetBytes(seed) // reduced mod r; a uniformly random 256-bit value is within 2^-2 of uniform per bit... good enough for Schwartz–Zippel
	if rho.IsZero() {
		rho.SetOne()
	}
	pw := make([]fr.Element, sh.nWires)
	pw[0].SetOne()
	for j := 1; j < len(pw); j++ {
		pw[j].Mul(&pw[j-1], &rho)
	}
	claimed := make([]curve.G1Affine, sh.nWires)
	var ip, iv int
	ic := make([]int, nc)
	for j := 0; j < sh.nWires; j++ {
		switch c := sh.class[j]; c {
		case -1:
			claimed[j] = p.Parameters.G1.PKK[ip]
			ip++
		case -2:
			claimed[j] = s.VKK[iv]
			iv++
		default:
			claimed[j] = p.Parameters.G1.SigmaCKK[c][ic[c]]
			ic[c]++
		}
	}
	u := make([]fr.Element, n)
	v := make([]fr.Element, n)
	w := make([]fr.Element, n)
	coeffs := ccs.Coefficients
	it := ccs.GetR1CIterator()
	row := 0
	var t fr.Element
	for c := it.Next(); c != nil; c = it.Next() {
		for _, term := range c.L {
			t.Mul(&coeffs[term.CID], &pw[term.VID])
			u[row].Add(&u[row], &t)
		}
		for _, term := range c.R {
			t.Mul(&coeffs[term.CID], &pw[term.VID])
			v[row].Add(&v[row], &t)
		}
		for _, term := range c.O {
			t.Mul(&coeffs[term.CID], &pw[term.VID])
			w[row].Add(&w[row], &t)
		}
		row++
	}
	d := fft.NewDomain(uint64(n))
	for _, x := range [][]fr.Element{u, v, w} {
		d.FFTInverse(x, fft.DIF)
		utils.BitReverse(x)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := ecc.MultiExpConfig{}
	var lhs, rb, ra, rc curve.G1Jac
	if _, err := lhs.MultiExp(claimed, pw, cfg); err != nil {
		return err
	}
	if _, err := rb.MultiExp(srs.G1.BetaTau[:n], u, cfg); err != nil {
		return err
	}
	if _, err := ra.MultiExp(srs.G1.AlphaTau[:n], v, cfg); err != nil {
		return err
	}
	if _, err := rc.MultiExp(srs.G1.Tau[:n], w, cfg); err != nil {
		return err
	}
	rb.AddAssign(&ra)
	rb.AddAssign(&rc)
	if !lhs.Equal(&rb) {
		return fmt.Errorf("%w: the K of the wires are not those of this circuit on this SRS", ErrWrongCircuit)
	}
	return nil
}

// ErrWrongCircuit: a phase-2 start is not the initialisation of the
// circuit on the sealed phase 1.
var ErrWrongCircuit = errors.New("not this circuit's phase-2 start")

func proofBytes(p *cmpc.UpdateProof) []byte {
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Phase2Bytes is gnark's encoding of a phase-2 accumulator.
func Phase2Bytes(p *gmpc.Phase2) []byte {
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Phase2Hash is the SHA-256 of gnark's encoding: the next contribution's
// challenge.
func Phase2Hash(p *gmpc.Phase2) [32]byte { return sha256.Sum256(Phase2Bytes(p)) }

// DecodePhase2 decodes a contribution on prev from exactly b: it must have
// prev's shape and a 32-byte challenge, so its length is known before
// anything is decoded, and every list length inside is checked against
// prev's before the list is allocated.
func DecodePhase2(b []byte, prev *gmpc.Phase2) (*gmpc.Phase2, error) {
	want := int64(len(Phase2Bytes(prev))) - int64(len(prev.Challenge)) + sha256.Size
	if int64(len(b)) != want {
		return nil, fmt.Errorf("%w: %d bytes, a contribution to this phase 2 has %d", ErrSize, len(b), want)
	}
	r := bytes.NewReader(b)
	p, err := readPhase2(r, shapeOfAcc(prev))
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrEncoding, r.Len())
	}
	return p, nil
}

// DecodePhase2For decodes a contribution to the phase 2 of ccs on a domain
// of n whose predecessor is not at hand (a restarted node): every
// accumulator of the ceremony has the start's shape and a 32-byte
// challenge, so its length and every list length inside are known.
func DecodePhase2For(b []byte, ccs *cs.R1CS, n int) (*gmpc.Phase2, error) {
	sh, err := shapeOf(ccs, n)
	if err != nil {
		return nil, err
	}
	want := sh.contributionSize()
	if int64(len(b)) != want {
		return nil, fmt.Errorf("%w: %d bytes, a contribution to this phase 2 has %d", ErrSize, len(b), want)
	}
	r := bytes.NewReader(b)
	p, err := readPhase2(r, sh.acc())
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrEncoding, r.Len())
	}
	return p, nil
}

// ClonePhase2 deep-copies an accumulator (gnark's Contribute and Seal
// modify theirs).
func ClonePhase2(p *gmpc.Phase2) *gmpc.Phase2 {
	q := new(gmpc.Phase2)
	q.Parameters.G1.Delta = p.Parameters.G1.Delta
	q.Parameters.G1.Z = slices.Clone(p.Parameters.G1.Z)
	q.Parameters.G1.PKK = slices.Clone(p.Parameters.G1.PKK)
	q.Parameters.G1.SigmaCKK = make([][]curve.G1Affine, len(p.Parameters.G1.SigmaCKK))
	for i := range p.Parameters.G1.SigmaCKK {
		q.Parameters.G1.SigmaCKK[i] = slices.Clone(p.Parameters.G1.SigmaCKK[i])
	}
	q.Parameters.G2.Delta = p.Parameters.G2.Delta
	q.Parameters.G2.Sigma = slices.Clone(p.Parameters.G2.Sigma)
	q.Sigmas = slices.Clone(p.Sigmas)
	q.Delta = p.Delta
	q.Challenge = slices.Clone(p.Challenge)
	return q
}

// ContributePhase2 returns a new accumulator with fresh δ and σ applied to
// a copy of prev (gnark's Phase2.Contribute, which draws the randomness and
// forgets it).
func ContributePhase2(prev *gmpc.Phase2) *gmpc.Phase2 {
	next := ClonePhase2(prev)
	next.Contribute()
	return next
}

// ContributePhase2As is ContributePhase2 with the proofs of knowledge of
// δ and σ bound to contributor's key (ProofChallenge): gnark's
// Phase2.Contribute with that challenge for the proofs, the accumulator's
// Challenge field still prev's hash. The randomness is zeroed before it
// returns.
func ContributePhase2As(prev *gmpc.Phase2, contributor []byte) *gmpc.Phase2 {
	if contributor == nil {
		return ContributePhase2(prev)
	}
	if len(prev.Parameters.G1.SigmaCKK) > 255 {
		panic("phase 2: more than 255 commitments") // the σ tags are one byte (gnark panics too)
	}
	next := ClonePhase2(prev)
	h := Phase2Hash(prev)
	next.Challenge = h[:]
	pc := ProofChallenge(h[:], contributor)
	var delta fr.Element
	sigma := make([]fr.Element, len(next.Parameters.G1.SigmaCKK))
	defer func() { delta.SetZero(); zero(sigma) }()
	next.Delta = cmpc.UpdateValues(&delta, pc, gmpc.DST_DELTA)
	for i := range sigma {
		next.Sigmas[i] = cmpc.UpdateValues(&sigma[i], pc, gmpc.DST_SIGMA+byte(i))
	}
	// gnark's Phase2.update: σ_i scales [σ_i]₂ and the commitment bases,
	// δ scales [δ]₁, [δ]₂, and 1/δ scales Z and PKK.
	var bi big.Int
	scale := func(s []curve.G1Affine, by *big.Int) {
		parallel(len(s), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				s[i].ScalarMultiplication(&s[i], by)
			}
		})
	}
	for i := range sigma {
		sigma[i].BigInt(&bi)
		next.Parameters.G2.Sigma[i].ScalarMultiplication(&next.Parameters.G2.Sigma[i], &bi)
		scale(next.Parameters.G1.SigmaCKK[i], &bi)
	}
	delta.BigInt(&bi)
	next.Parameters.G2.Delta.ScalarMultiplication(&next.Parameters.G2.Delta, &bi)
	next.Parameters.G1.Delta.ScalarMultiplication(&next.Parameters.G1.Delta, &bi)
	var inv fr.Element
	inv.Inverse(&delta)
	inv.BigInt(&bi)
	scale(next.Parameters.G1.Z, &bi)
	scale(next.Parameters.G1.PKK, &bi)
	inv.SetZero()
	bi.SetInt64(0)
	return next
}

// VerifyPhase2 checks that next is a contribution on prev: its challenge
// is prev's hash (gnark accepts an empty one; we do not), and gnark's
// Phase2.Verify accepts it (proofs of knowledge of δ and σ, and the
// updates of every δ-dependent element, by random linear combinations).
func VerifyPhase2(prev, next *gmpc.Phase2) error { return VerifyPhase2As(prev, next, nil) }

// VerifyPhase2As is VerifyPhase2 for a contribution whose proofs are bound
// to contributor's key (ContributePhase2As): gnark's Phase2.Verify with
// that challenge for the proofs.
func VerifyPhase2As(prev, next *gmpc.Phase2, contributor []byte) error {
	h := Phase2Hash(prev)
	if !bytes.Equal(next.Challenge, h[:]) {
		return fmt.Errorf("%w: its challenge is %x…, the previous accumulator's hash %x…", ErrNotExtending, prefix(next.Challenge), h[:8])
	}
	if contributor == nil {
		if err := prev.Verify(next); err != nil {
			return fmt.Errorf("%w: %v", ErrBadContribution, err)
		}
		return nil
	}
	pp, np := &prev.Parameters, &next.Parameters
	if len(np.G1.Z) != len(pp.G1.Z) || len(np.G1.PKK) != len(pp.G1.PKK) || len(np.G1.SigmaCKK) != len(pp.G1.SigmaCKK) ||
		len(np.G2.Sigma) != len(pp.G2.Sigma) || len(next.Sigmas) != len(prev.Sigmas) {
		return fmt.Errorf("%w: contribution size mismatch", ErrBadContribution)
	}
	pc := ProofChallenge(h[:], contributor)
	for i := range prev.Sigmas {
		if len(np.G1.SigmaCKK[i]) != len(pp.G1.SigmaCKK[i]) {
			return fmt.Errorf("%w: commitment %d: size mismatch", ErrBadContribution, i)
		}
		if err := next.Sigmas[i].Verify(pc, gmpc.DST_SIGMA+byte(i),
			cmpc.ValueUpdate{Previous: pp.G1.SigmaCKK[i], Next: np.G1.SigmaCKK[i]},
			cmpc.ValueUpdate{Previous: &pp.G2.Sigma[i], Next: &np.G2.Sigma[i]}); err != nil {
			return fmt.Errorf("%w: σ[%d]: %v", ErrBadContribution, i, err)
		}
	}
	// Z and PKK carry 1/δ: checked "backwards", as gnark does.
	if err := next.Delta.Verify(pc, gmpc.DST_DELTA,
		cmpc.ValueUpdate{Previous: &pp.G1.Delta, Next: &np.G1.Delta},
		cmpc.ValueUpdate{Previous: &pp.G2.Delta, Next: &np.G2.Delta},
		cmpc.ValueUpdate{Previous: np.G1.Z, Next: pp.G1.Z},
		cmpc.ValueUpdate{Previous: np.G1.PKK, Next: pp.G1.PKK}); err != nil {
		return fmt.Errorf("%w: δ: %v", ErrBadContribution, err)
	}
	return nil
}

var phase2BeaconDST = []byte("Groth16 MPC Setup - Phase2") // gnark's

// DeriveVerifyingKey returns the verifying key gnark's Phase2.Seal gives
// for the last accumulator and the beacon: α, β from the sealed phase-1
// SRS, γ = 1, δ and σ from the last accumulator times the beacon's public
// contribution, K from the start (VKK), and the circuit's commitment
// layout. It needs neither the Lagrange basis nor the proving key, so
// every ledger node derives the key itself.
func DeriveVerifyingKey(ccs *cs.R1CS, srs *gmpc.SrsCommons, start *Phase2Start, last *gmpc.Phase2, beacon []byte) (groth16.VerifyingKey, error) {
	sh, err := shapeOf(ccs, len(srs.G1.AlphaTau))
	if err != nil {
		return nil, err
	}
	if len(start.VKK) != sh.vkk || len(last.Parameters.G2.Sigma) != len(sh.commitments) {
		return nil, fmt.Errorf("%w: the transcript has the wrong shape for this circuit", ErrWrongCircuit)
	}
	h := Phase2Hash(last)
	c := cmpc.BeaconContributions(h[:], phase2BeaconDST, beacon, 1+len(last.Sigmas))
	var bi big.Int
	c[0].BigInt(&bi)
	vk := new(g16.VerifyingKey)
	_, _, _, g2 := curve.Generators()
	vk.G1.Alpha = srs.G1.AlphaTau[0]
	vk.G1.Beta = srs.G1.BetaTau[0]
	vk.G1.Delta.ScalarMultiplication(&last.Parameters.G1.Delta, &bi)
	vk.G2.Beta = srs.G2.Beta
	vk.G2.Delta.ScalarMultiplication(&last.Parameters.G2.Delta, &bi)
	vk.G2.Gamma = g2
	vk.G1.K = slices.Clone(start.VKK)
	vk.CommitmentKeys = make([]pedersen.VerifyingKey, len(last.Parameters.G2.Sigma))
	for i := range vk.CommitmentKeys {
		var s curve.G2Affine
		s.ScalarMultiplication(&last.Parameters.G2.Sigma[i], c[1+i].BigInt(&bi))
		vk.CommitmentKeys[i].G = g2
		vk.CommitmentKeys[i].GSigmaNeg.Neg(&s)
	}
	vk.PublicAndCommitmentCommitted = sh.commitments.GetPublicAndCommitmentCommitted(sh.commitments.CommitmentIndexes(), sh.nbPublic)
	if err := vk.Precompute(); err != nil {
		return nil, err
	}
	return vk, nil
}

// SealPhase2 makes the proving and verifying keys from the last
// accumulator, the beacon, the sealed SRS and the evaluations of
// NewPhase2Start (gnark's Phase2.Seal, on a copy of last).
func SealPhase2(srs *gmpc.SrsCommons, evals *gmpc.Phase2Evaluations, last *gmpc.Phase2, beacon []byte) (groth16.ProvingKey, groth16.VerifyingKey) {
	return ClonePhase2(last).Seal(srs, evals, beacon)
}
