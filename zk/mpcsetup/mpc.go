package mpcsetup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"
	gio "github.com/consensys/gnark/io"
)

// This file re-implements the slow, circuit-specific parts of gnark's
// Groth16 MPC (backend/groth16/bn254/mpcsetup) with identical outputs:
//
//   - Phase2.Initialize spends nearly all its time turning the phase-1
//     powers [τ^i] into the Lagrange basis [L_i(τ)] with an FFT over the
//     group in affine coordinates ((n/2)·log n full scalar multiplications
//     per vector, ~120 s at n = 2^15 here), then accumulates every
//     constraint term with an affine scalar multiplication and an affine
//     addition (one field inversion each). initPhase2 takes the Lagrange
//     basis as input and accumulates per wire in Jacobian coordinates, in
//     parallel, with a multi-scalar multiplication for wires with many
//     terms and additions for coefficients ±1, 2.
//   - The Lagrange basis comes either from a group FFT in Jacobian
//     coordinates (lagrangeFromSRS, any ceremony) or, in a ceremony of one
//     where this process drew the only contribution and so knows τ, α, β,
//     from fixed-base multiplications (lagrangeFromSecrets), which is
//     far faster and gives the same points.
//
// TestInitPhase2MatchesGnark checks byte-identical results against gnark.

// lagrangeBasis holds [L_i(τ)]₁, [α·L_i(τ)]₁, [β·L_i(τ)]₁ and [L_i(τ)]₂ for
// the n-th roots of unity, in natural order.
type lagrangeBasis struct {
	Tau1, AlphaTau1, BetaTau1 []curve.G1Affine
	Tau2                      []curve.G2Affine
}

// lagrangeScalars returns L_i(τ) = (ω^i/n)·(τ^n - 1)/(τ - ω^i).
func lagrangeScalars(n uint64, tau *fr.Element) ([]fr.Element, error) {
	d := fft.NewDomain(n)
	den := make([]fr.Element, n)
	num := make([]fr.Element, n)
	var w fr.Element
	w.SetOne()
	var tn fr.Element
	tn.Exp(*tau, new(big.Int).SetUint64(n))
	var one fr.Element
	one.SetOne()
	tn.Sub(&tn, &one)
	tn.Mul(&tn, &d.CardinalityInv)
	for i := range den {
		den[i].Sub(tau, &w)
		if den[i].IsZero() {
			return nil, errors.New("τ is a root of unity; draw again")
		}
		num[i].Mul(&w, &tn)
		w.Mul(&w, &d.Generator)
	}
	den = fr.BatchInvert(den)
	for i := range num {
		num[i].Mul(&num[i], &den[i])
	}
	return num, nil
}

func lagrangeFromSecrets(n uint64, tau, alpha, beta *fr.Element) (*lagrangeBasis, error) {
	l, err := lagrangeScalars(n, tau)
	if err != nil {
		return nil, err
	}
	_, _, g1, g2 := curve.Generators()
	a := make([]fr.Element, n)
	b := make([]fr.Element, n)
	for i := range l {
		a[i].Mul(&l[i], alpha)
		b[i].Mul(&l[i], beta)
	}
	return &lagrangeBasis{
		Tau1:      fixedBaseG1(&g1, l),
		AlphaTau1: fixedBaseG1(&g1, a),
		BetaTau1:  fixedBaseG1(&g1, b),
		Tau2:      fixedBaseG2(&g2, l),
	}, nil
}

// srsFromSecrets is the phase-1 SRS for known τ, α, β (gnark's SrsCommons).
func srsFromSecrets(n uint64, tau, alpha, beta *fr.Element) *gmpc.SrsCommons {
	_, _, g1, g2 := curve.Generators()
	pw := make([]fr.Element, 2*n-1)
	pw[0].SetOne()
	for i := 1; i < len(pw); i++ {
		pw[i].Mul(&pw[i-1], tau)
	}
	a := make([]fr.Element, n)
	b := make([]fr.Element, n)
	for i := range a {
		a[i].Mul(&pw[i], alpha)
		b[i].Mul(&pw[i], beta)
	}
	var c gmpc.SrsCommons
	c.G1.Tau = fixedBaseG1(&g1, pw)
	c.G1.AlphaTau = fixedBaseG1(&g1, a)
	c.G1.BetaTau = fixedBaseG1(&g1, b)
	c.G2.Tau = fixedBaseG2(&g2, pw[:n])
	var bb big.Int
	c.G2.Beta.ScalarMultiplication(&g2, beta.BigInt(&bb))
	return &c
}

// Phase-1 domain separation tags, as in gnark's gmpc.
const (
	dstTau = iota
	dstAlpha
	dstBeta
)

// phase1OfOne runs phase 1 with a single contribution (drawn here) and
// seals it with the beacon, exactly as gnark's Phase1.Contribute followed by
// VerifyPhase1 would, but with fixed-base arithmetic since this process
// knows the toxic values; they are zeroed before returning. It returns the
// contribution as gnark encodes a Phase1 (so `veil setup verify` can check
// it), the sealed SRS and its Lagrange basis.
func phase1OfOne(ctx context.Context, n uint64, beacon []byte) (transcript []byte, srs *gmpc.SrsCommons, lag *lagrangeBasis, err error) {
	var buf bytes.Buffer
	if _, err := gmpc.NewPhase1(n).WriteTo(&buf); err != nil {
		return nil, nil, nil, err
	}
	h0 := sha256.Sum256(buf.Bytes())
	var tau, alpha, beta fr.Element
	defer func() { tau.SetZero(); alpha.SetZero(); beta.SetZero() }()
	proofs := []cmpc.UpdateProof{
		cmpc.UpdateValues(&tau, h0[:], dstTau),
		cmpc.UpdateValues(&alpha, h0[:], dstAlpha),
		cmpc.UpdateValues(&beta, h0[:], dstBeta),
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	contributed := srsFromSecrets(n, &tau, &alpha, &beta)
	buf.Reset()
	for i := range proofs {
		if _, err := proofs[i].WriteTo(&buf); err != nil {
			return nil, nil, nil, err
		}
	}
	if _, err := contributed.WriteTo(&buf); err != nil {
		return nil, nil, nil, err
	}
	if _, err := gio.WriteBytesShort(h0[:], &buf); err != nil {
		return nil, nil, nil, err
	}
	transcript = buf.Bytes()
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	h1 := sha256.Sum256(transcript)
	bc := cmpc.BeaconContributions(h1[:], []byte("Groth16 MPC Setup - Phase 1"), beacon, 3)
	tau.Mul(&tau, &bc[0])
	alpha.Mul(&alpha, &bc[1])
	beta.Mul(&beta, &bc[2])
	srs = srsFromSecrets(n, &tau, &alpha, &beta)
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	lag, err = lagrangeFromSecrets(n, &tau, &alpha, &beta)
	if err != nil {
		return nil, nil, nil, err
	}
	return transcript, srs, lag, nil
}

// ---- Lagrange basis by a group FFT (any ceremony) ----

func bitReverse[T any](a []T) {
	n := uint64(len(a))
	nn := uint64(64 - bits.TrailingZeros64(n))
	for i := uint64(0); i < n; i++ {
		irev := bits.Reverse64(i) >> nn
		if irev > i {
			a[i], a[irev] = a[irev], a[i]
		}
	}
}

// groupIFFT replaces the first n powers in p by the Lagrange basis: an
// inverse DFT over the group (decimation in frequency, then bit reversal and
// the 1/n scaling), as gnark's lagrangeCoeffsG1, in Jacobian coordinates and
// with every stage split across the cores.
func lagrangeG1(ctx context.Context, powers []curve.G1Affine, n int) ([]curve.G1Affine, error) {
	a := make([]curve.G1Jac, n)
	for i := range a {
		a[i].FromAffine(&powers[i])
	}
	d := fft.NewDomain(uint64(n))
	tw := twiddles(&d.GeneratorInv, n)
	for m := n >> 1; m >= 1; m >>= 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stride := n / (2 * m) // twiddle for index i in a block is ω^(i·stride)
		parallel(n/2, func(lo, hi int) {
			var t curve.G1Jac
			var bi big.Int
			for k := lo; k < hi; k++ {
				blk, i := k/m, k%m
				x, y := blk*2*m+i, blk*2*m+i+m
				t.Set(&a[x])
				a[x].AddAssign(&a[y])
				a[y].Neg(&a[y])
				a[y].AddAssign(&t)
				if i != 0 {
					tw[i*stride].BigInt(&bi)
					a[y].ScalarMultiplication(&a[y], &bi)
				}
			}
		})
	}
	bitReverse(a)
	var inv big.Int
	d.CardinalityInv.BigInt(&inv)
	parallel(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a[i].ScalarMultiplication(&a[i], &inv)
		}
	})
	return curve.BatchJacobianToAffineG1(a), nil
}

func lagrangeG2(ctx context.Context, powers []curve.G2Affine, n int) ([]curve.G2Affine, error) {
	a := make([]curve.G2Jac, n)
	for i := range a {
		a[i].FromAffine(&powers[i])
	}
	d := fft.NewDomain(uint64(n))
	tw := twiddles(&d.GeneratorInv, n)
	for m := n >> 1; m >= 1; m >>= 1 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		stride := n / (2 * m)
		parallel(n/2, func(lo, hi int) {
			var t curve.G2Jac
			var bi big.Int
			for k := lo; k < hi; k++ {
				blk, i := k/m, k%m
				x, y := blk*2*m+i, blk*2*m+i+m
				t.Set(&a[x])
				a[x].AddAssign(&a[y])
				a[y].Neg(&a[y])
				a[y].AddAssign(&t)
				if i != 0 {
					tw[i*stride].BigInt(&bi)
					a[y].ScalarMultiplication(&a[y], &bi)
				}
			}
		})
	}
	bitReverse(a)
	var inv big.Int
	d.CardinalityInv.BigInt(&inv)
	out := make([]curve.G2Affine, n)
	parallel(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a[i].ScalarMultiplication(&a[i], &inv)
			out[i].FromJacobian(&a[i])
		}
	})
	return out, nil
}

func twiddles(w *fr.Element, n int) []fr.Element {
	t := make([]fr.Element, n/2+1)
	t[0].SetOne()
	for i := 1; i < len(t); i++ {
		t[i].Mul(&t[i-1], w)
	}
	return t
}

// lagrangeFromSRS computes the Lagrange basis from a phase-1 SRS by group
// FFTs: the slow path, for ceremonies with several contributors.
func lagrangeFromSRS(ctx context.Context, c *gmpc.SrsCommons, n int) (*lagrangeBasis, error) {
	var l lagrangeBasis
	var err error
	if l.Tau1, err = lagrangeG1(ctx, c.G1.Tau, n); err != nil {
		return nil, err
	}
	if l.AlphaTau1, err = lagrangeG1(ctx, c.G1.AlphaTau, n); err != nil {
		return nil, err
	}
	if l.BetaTau1, err = lagrangeG1(ctx, c.G1.BetaTau, n); err != nil {
		return nil, err
	}
	if l.Tau2, err = lagrangeG2(ctx, c.G2.Tau, n); err != nil {
		return nil, err
	}
	return &l, nil
}

// evalsFromStart returns the evaluations a proving key needs (gnark's
// Phase2Evaluations) for r1cs on the sealed SRS from the phase-2 start
// instead of from the whole Lagrange basis: [A_j(τ)]₁, [B_j(τ)]₁ and
// [B_j(τ)]₂ need only the Lagrange bases of [τ]₁ and [τ]₂ (two group FFTs
// of the four NewPhase2Start needs), and the rest is in the start: VKK,
// and the commitment bases, which the start holds unscaled (σ = 1). The
// caller checks the start against the SRS (CheckPhase2Start).
func evalsFromStart(ctx context.Context, r1cs *cs.R1CS, srs *gmpc.SrsCommons, start *Phase2Start) (*gmpc.Phase2Evaluations, error) {
	n := len(srs.G2.Tau)
	var lag lagrangeBasis
	var err error
	if lag.Tau1, err = lagrangeG1(ctx, srs.G1.Tau, n); err != nil {
		return nil, err
	}
	if lag.Tau2, err = lagrangeG2(ctx, srs.G2.Tau, n); err != nil {
		return nil, err
	}
	_, evals, err := initPhase2(ctx, r1cs, srs, &lag, nil)
	if err != nil {
		return nil, err
	}
	evals.G1.VKK = slices.Clone(start.VKK)
	evals.G1.CKK = make([][]curve.G1Affine, len(start.Acc.Parameters.G1.SigmaCKK))
	for i, c := range start.Acc.Parameters.G1.SigmaCKK {
		evals.G1.CKK[i] = slices.Clone(c)
	}
	return evals, nil
}

// ---- Phase 2 initialisation ----

type term struct {
	row   uint32
	coeff uint32 // coefficient ID
}

// wireTerms lists, per wire, the terms of one side (L, R or O) of the
// constraints, in compressed-row form.
type wireTerms struct {
	start []int
	terms []term
}

func buildWireTerms(nWires int, side [][]term) wireTerms {
	// side[row] is a list of (wire in .row, coeff) pairs; invert it.
	counts := make([]int, nWires+1)
	for _, ts := range side {
		for _, t := range ts {
			counts[t.row+1]++
		}
	}
	for i := 1; i <= nWires; i++ {
		counts[i] += counts[i-1]
	}
	out := wireTerms{start: counts, terms: make([]term, counts[nWires])}
	fill := slices.Clone(counts[:nWires])
	for row, ts := range side {
		for _, t := range ts {
			out.terms[fill[t.row]] = term{row: uint32(row), coeff: t.coeff}
			fill[t.row]++
		}
	}
	return out
}

// smallCoeff classifies a coefficient: 1, -1, 2 are handled by additions.
func coeffKind(id uint32) int {
	switch id {
	case constraint.CoeffIdZero:
		return 0
	case constraint.CoeffIdOne:
		return 1
	case constraint.CoeffIdMinusOne:
		return -1
	case constraint.CoeffIdTwo:
		return 2
	}
	return 3
}

const msmThreshold = 24

// coeffPlan says how to multiply a point by one coefficient of the
// constraint system: most coefficients are small integers (Poseidon2's
// matrices, limb weights) or ± powers of two (packing offsets), for which a
// short double-and-add is 2–20x cheaper than a full GLV multiplication.
type coeffPlan struct {
	neg   bool
	small uint64 // > 0: multiply by this (after negation)
	pow2  int    // > 0 and small == 0: 2^pow2
}

func planCoeffs(coeffs []fr.Element) []coeffPlan {
	out := make([]coeffPlan, len(coeffs))
	var b, nb big.Int
	for i := range coeffs {
		coeffs[i].BigInt(&b)
		var n fr.Element
		n.Neg(&coeffs[i])
		n.BigInt(&nb)
		v, neg := &b, false
		if nb.BitLen() < b.BitLen() {
			v, neg = &nb, true
		}
		switch {
		case v.BitLen() <= 64 && v.Sign() > 0:
			out[i] = coeffPlan{neg: neg, small: v.Uint64()}
		case v.BitLen() <= 160 && v.TrailingZeroBits() == uint(v.BitLen()-1):
			out[i] = coeffPlan{neg: neg, pow2: v.BitLen() - 1}
		}
	}
	return out
}

func mulSmallG1(p *curve.G1Affine, c coeffPlan) curve.G1Jac {
	var r curve.G1Jac
	if c.small > 0 {
		r.FromAffine(p)
		for i := 62 - bits.LeadingZeros64(c.small); i >= 0; i-- {
			r.DoubleAssign()
			if c.small>>uint(i)&1 == 1 {
				r.AddMixed(p)
			}
		}
	} else {
		r.FromAffine(p)
		for i := 0; i < c.pow2; i++ {
			r.DoubleAssign()
		}
	}
	if c.neg {
		r.Neg(&r)
	}
	return r
}

func mulSmallG2(p *curve.G2Affine, c coeffPlan) curve.G2Jac {
	var r curve.G2Jac
	if c.small > 0 {
		r.FromAffine(p)
		for i := 62 - bits.LeadingZeros64(c.small); i >= 0; i-- {
			r.DoubleAssign()
			if c.small>>uint(i)&1 == 1 {
				r.AddMixed(p)
			}
		}
	} else {
		r.FromAffine(p)
		for i := 0; i < c.pow2; i++ {
			r.DoubleAssign()
		}
	}
	if c.neg {
		r.Neg(&r)
	}
	return r
}

// sumG1 returns Σ coeff·pts[row] over the terms (Jacobian).
func sumG1(ts []term, pts []curve.G1Affine, coeffs []fr.Element, plans []coeffPlan) curve.G1Jac {
	var acc curve.G1Jac
	acc.X.SetOne()
	acc.Y.SetOne()
	var big []term
	for _, t := range ts {
		switch coeffKind(t.coeff) {
		case 0:
		case 1:
			acc.AddMixed(&pts[t.row])
		case -1:
			var n curve.G1Affine
			n.Neg(&pts[t.row])
			acc.AddMixed(&n)
		case 2:
			acc.AddMixed(&pts[t.row])
			acc.AddMixed(&pts[t.row])
		default:
			big = append(big, t)
		}
	}
	if len(big) == 0 {
		return acc
	}
	// Small and power-of-two coefficients by double-and-add; the rest by
	// one multi-scalar multiplication when there are enough of them.
	rest := big[:0]
	for _, t := range big {
		if pl := plans[t.coeff]; pl.small > 0 || pl.pow2 > 0 {
			j := mulSmallG1(&pts[t.row], pl)
			acc.AddAssign(&j)
		} else {
			rest = append(rest, t)
		}
	}
	big = rest
	if len(big) >= msmThreshold {
		p := make([]curve.G1Affine, len(big))
		s := make([]fr.Element, len(big))
		for i, t := range big {
			p[i] = pts[t.row]
			s[i] = coeffs[t.coeff]
		}
		var r curve.G1Jac
		if _, err := r.MultiExp(p, s, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
			panic(err)
		}
		acc.AddAssign(&r)
		return acc
	}
	var bi bigInt
	for _, t := range big {
		var j curve.G1Jac
		if pl := plans[t.coeff]; pl.small > 0 || pl.pow2 > 0 {
			j = mulSmallG1(&pts[t.row], pl)
			acc.AddAssign(&j)
			continue
		}
		j.FromAffine(&pts[t.row])
		j.ScalarMultiplication(&j, bi.of(&coeffs[t.coeff]))
		acc.AddAssign(&j)
	}
	return acc
}

func sumG2(ts []term, pts []curve.G2Affine, coeffs []fr.Element, plans []coeffPlan) curve.G2Jac {
	var acc curve.G2Jac
	acc.X.SetOne()
	acc.Y.SetOne()
	var big []term
	for _, t := range ts {
		switch coeffKind(t.coeff) {
		case 0:
		case 1:
			acc.AddMixed(&pts[t.row])
		case -1:
			var n curve.G2Affine
			n.Neg(&pts[t.row])
			acc.AddMixed(&n)
		case 2:
			acc.AddMixed(&pts[t.row])
			acc.AddMixed(&pts[t.row])
		default:
			big = append(big, t)
		}
	}
	if len(big) == 0 {
		return acc
	}
	// Small and power-of-two coefficients by double-and-add; the rest by
	// one multi-scalar multiplication when there are enough of them.
	rest := big[:0]
	for _, t := range big {
		if pl := plans[t.coeff]; pl.small > 0 || pl.pow2 > 0 {
			j := mulSmallG2(&pts[t.row], pl)
			acc.AddAssign(&j)
		} else {
			rest = append(rest, t)
		}
	}
	big = rest
	if len(big) >= msmThreshold {
		p := make([]curve.G2Affine, len(big))
		s := make([]fr.Element, len(big))
		for i, t := range big {
			p[i] = pts[t.row]
			s[i] = coeffs[t.coeff]
		}
		var r curve.G2Jac
		if _, err := r.MultiExp(p, s, ecc.MultiExpConfig{NbTasks: 1}); err != nil {
			panic(err)
		}
		acc.AddAssign(&r)
		return acc
	}
	var bi bigInt
	for _, t := range big {
		var j curve.G2Jac
		if pl := plans[t.coeff]; pl.small > 0 || pl.pow2 > 0 {
			j = mulSmallG2(&pts[t.row], pl)
			acc.AddAssign(&j)
			continue
		}
		j.FromAffine(&pts[t.row])
		j.ScalarMultiplication(&j, bi.of(&coeffs[t.coeff]))
		acc.AddAssign(&j)
	}
	return acc
}

type bigInt struct{ b big.Int }

func (b *bigInt) of(e *fr.Element) *big.Int { return e.BigInt(&b.b) }

// initPhase2 is gnark's Phase2.Initialize, given the Lagrange basis of the
// SRS: same Phase2 and Phase2Evaluations, byte for byte.
func initPhase2(ctx context.Context, r1cs *cs.R1CS, commons *gmpc.SrsCommons, lag *lagrangeBasis, progress func(done, total int)) (*gmpc.Phase2, *gmpc.Phase2Evaluations, error) {
	n := len(commons.G1.AlphaTau)
	if n < r1cs.GetNbConstraints() {
		return nil, nil, fmt.Errorf("phase 2: %d constraints do not fit a domain of %d", r1cs.GetNbConstraints(), n)
	}
	if len(lag.Tau1) != n {
		return nil, nil, fmt.Errorf("phase 2: Lagrange basis of size %d for a domain of %d", len(lag.Tau1), n)
	}
	nbInternal, nbSecret, nbPublic := r1cs.GetNbVariables()
	nWires := nbInternal + nbSecret + nbPublic

	var L, R, O [][]term
	it := r1cs.GetR1CIterator()
	for c := it.Next(); c != nil; c = it.Next() {
		conv := func(le constraint.LinearExpression) []term {
			out := make([]term, len(le))
			for i, t := range le {
				out[i] = term{row: t.VID, coeff: t.CID} // .row holds the wire here
			}
			return out
		}
		L = append(L, conv(c.L))
		R = append(R, conv(c.R))
		O = append(O, conv(c.O))
	}
	wl, wr, wo := buildWireTerms(nWires, L), buildWireTerms(nWires, R), buildWireTerms(nWires, O)
	L, R, O = nil, nil, nil
	coeffs := r1cs.Coefficients
	plans := planCoeffs(coeffs)

	var evals gmpc.Phase2Evaluations
	evals.G1.A = make([]curve.G1Affine, nWires)
	evals.G1.B = make([]curve.G1Affine, nWires)
	evals.G2.B = make([]curve.G2Affine, nWires)
	var K []curve.G1Jac // not needed for the prover's evaluations (evalsFromStart)
	if lag.AlphaTau1 != nil {
		K = make([]curve.G1Jac, nWires)
	}
	jA := make([]curve.G1Jac, nWires)
	jB := make([]curve.G1Jac, nWires)

	var next atomic.Int64
	var done atomic.Int64
	const chunk = 64
	var wg sync.WaitGroup
	workers := max(1, runtime.GOMAXPROCS(0))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= nWires || ctx.Err() != nil {
					return
				}
				hi := min(lo+chunk, nWires)
				for j := lo; j < hi; j++ {
					tl := wl.terms[wl.start[j]:wl.start[j+1]]
					tr := wr.terms[wr.start[j]:wr.start[j+1]]
					to := wo.terms[wo.start[j]:wo.start[j+1]]
					jA[j] = sumG1(tl, lag.Tau1, coeffs, plans)
					jB[j] = sumG1(tr, lag.Tau1, coeffs, plans)
					b2 := sumG2(tr, lag.Tau2, coeffs, plans)
					evals.G2.B[j].FromJacobian(&b2)
					if lag.AlphaTau1 == nil {
						continue // the prover's evaluations only (evalsFromStart): no K
					}
					k := sumG1(tl, lag.BetaTau1, coeffs, plans)
					ka := sumG1(tr, lag.AlphaTau1, coeffs, plans)
					kc := sumG1(to, lag.Tau1, coeffs, plans)
					k.AddAssign(&ka)
					k.AddAssign(&kc)
					K[j] = k
				}
				if progress != nil {
					progress(int(done.Add(int64(hi-lo))), nWires)
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	copy(evals.G1.A, curve.BatchJacobianToAffineG1(jA))
	copy(evals.G1.B, curve.BatchJacobianToAffineG1(jB))
	jA, jB = nil, nil

	commitments, ok := r1cs.CommitmentInfo.(constraint.Groth16Commitments)
	if !ok {
		return nil, nil, errors.New("phase 2: not a Groth16 constraint system")
	}
	evals.PublicAndCommitmentCommitted = commitments.GetPublicAndCommitmentCommitted(commitments.CommitmentIndexes(), nbPublic)
	if lag.AlphaTau1 == nil {
		return nil, &evals, nil
	}
	kAff := curve.BatchJacobianToAffineG1(K)
	K = nil

	p := new(gmpc.Phase2)
	_, _, g1, g2 := curve.Generators()
	p.Parameters.G1.Delta = g1
	p.Parameters.G2.Delta = g2

	// Z[i] = [τ^(i+n) - τ^i]₁, bit-reversed, without the last element.
	z := make([]curve.G1Jac, n)
	parallel(n-1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			z[i].FromAffine(&commons.G1.Tau[i+n])
			var t curve.G1Affine
			t.Neg(&commons.G1.Tau[i])
			z[i].AddMixed(&t)
		}
	})
	z[n-1].X.SetOne()
	z[n-1].Y.SetOne()
	p.Parameters.G1.Z = curve.BatchJacobianToAffineG1(z)
	bitReverse(p.Parameters.G1.Z)
	p.Parameters.G1.Z = p.Parameters.G1.Z[:n-1]

	evals.G1.CKK = make([][]curve.G1Affine, len(commitments))
	p.Sigmas = make([]cmpc.UpdateProof, len(commitments))
	p.Parameters.G1.SigmaCKK = make([][]curve.G1Affine, len(commitments))
	p.Parameters.G2.Sigma = make([]curve.G2Affine, len(commitments))
	committedBy := make(map[int]int)
	nbCommitted := 0
	for j := range commitments {
		evals.G1.CKK[j] = make([]curve.G1Affine, 0, len(commitments[j].PrivateCommitted))
		p.Parameters.G2.Sigma[j] = g2
		for _, w := range commitments[j].PrivateCommitted {
			committedBy[w] = j
		}
		nbCommitted += len(commitments[j].PrivateCommitted)
	}
	isCommitmentWire := make(map[int]bool)
	for _, c := range commitments {
		isCommitmentWire[c.CommitmentIndex] = true
	}
	p.Parameters.G1.PKK = make([]curve.G1Affine, 0, nbInternal+nbSecret-nbCommitted-len(commitments))
	evals.G1.VKK = make([]curve.G1Affine, 0, nbPublic+len(commitments))
	for j := 0; j < nWires; j++ {
		if ci, ok := committedBy[j]; ok {
			evals.G1.CKK[ci] = append(evals.G1.CKK[ci], kAff[j])
		} else if j < nbPublic || isCommitmentWire[j] {
			evals.G1.VKK = append(evals.G1.VKK, kAff[j])
		} else {
			p.Parameters.G1.PKK = append(p.Parameters.G1.PKK, kAff[j])
		}
	}
	for j := range commitments {
		p.Parameters.G1.SigmaCKK[j] = slices.Clone(evals.G1.CKK[j])
	}
	p.Challenge = nil
	return p, &evals, nil
}
