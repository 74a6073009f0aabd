package heverify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sync"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

const (
	// MaxLogN bounds the ring degree a dispute may name: rebuilding a
	// bundle at N = 2^15 would cost every node seconds.
	MaxLogN = 14
	// InputFrac is the fixed-point precision inputs are decoded to.
	InputFrac = 40
	// LogDelta: every slot of a disputed input must decode within
	// δ = 2^-16 of its expected value (a revealed challenge pixel p/256, a
	// grey level of the real image, or zero). A fresh encryption is far
	// closer (its largest slot error is about 2^-20.3 at the default
	// parameters, some 40 standard deviations below δ:
	// TestHonestInputsAreWellFormed), and a perturbation of at most δ per
	// pixel moves no score of the default model by more than 0.012, a
	// fortieth of the tolerance (TestAllowedInputPerturbationIsHarmless): a
	// client cannot frame an honest server by encrypting something slightly
	// different from what it revealed.
	LogDelta = 16
	// guardBits are the fraction bits kept below the score unit when the
	// output's scores are compared with the proven integers.
	guardBits = 16
)

// Verifier implements ledger.DisputeVerifier with package he. It caches
// compiled parameters (prime generation) by their encoding; everything it
// computes is a deterministic function of the evidence.
type Verifier struct {
	mu     sync.Mutex
	params map[string]*he.Parameters
}

var _ ledger.DisputeVerifier = (*Verifier)(nil)

// New returns a verifier.
func New() *Verifier { return &Verifier{params: map[string]*he.Parameters{}} }

func (v *Verifier) parameters(enc []byte) (*he.Parameters, error) {
	v.mu.Lock()
	p, ok := v.params[string(enc)]
	v.mu.Unlock()
	if ok {
		return p, nil
	}
	lit, err := he.UnmarshalParametersLiteral(enc)
	if err != nil {
		return nil, err
	}
	if lit.LogN > MaxLogN {
		return nil, fmt.Errorf("LogN = %d: disputes are checked up to LogN = %d", lit.LogN, MaxLogN)
	}
	if p, err = he.NewParameters(lit); err != nil {
		return nil, err
	}
	v.mu.Lock()
	if len(v.params) > 64 {
		clear(v.params)
	}
	v.params[string(enc)] = p
	v.mu.Unlock()
	return p, nil
}

func outcome(code ledgerv1.Code, format string, a ...any) (ledgerv1.Code, string) {
	return code, fmt.Sprintf(format, a...)
}

// CheckDispute implements ledger.DisputeVerifier: CODE_OK when fraud is
// proven, otherwise why not.
func (v *Verifier) CheckDispute(e *ledger.DisputeEvidence) (ledgerv1.Code, string) {
	spec, err := circuits.ParseSpec(e.Spec)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "registered spec: %v", err)
	}
	params, err := v.parameters(e.Parameters)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "CKKS parameters: %v", err)
	}
	layout, err := params.LayoutFor(spec.Architecture())
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "layout: %v", err)
	}
	if len(e.Seed) != he.SessionSeedSize {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "a seed of %d bytes", len(e.Seed))
	}
	// 1. The seed rebuilds the bundle the server acknowledged.
	var seed he.SessionSeed
	copy(seed[:], e.Seed)
	sk, keys, err := params.KeysFromSeed(seed, e.GaloisElements)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH, "the key bundle cannot be derived: %v", err)
	}
	bundle, err := keys.MarshalBinary()
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH, "encode the key bundle: %v", err)
	}
	if d := sha256.Sum256(bundle); !bytes.Equal(d[:], e.KeysDigest) {
		return outcome(ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH, "the seed derives key bundle %x, the receipt names %x", d[:8], e.KeysDigest[:min(8, len(e.KeysDigest))])
	}
	// 2. The input holds the revealed challenges (no framing).
	if code, detail := checkInput(params, sk, layout, e); code != ledgerv1.Code_CODE_OK {
		return code, detail
	}
	// 3. The output's challenge blocks against the proven outputs.
	return checkOutput(params, sk, layout, e)
}

// checkInput decrypts the input and requires every slot to be within δ of
// what a fresh encryption of the request holds: the revealed challenge at
// each challenge position, some grey level (p/256) at the real block's
// pixels, and zero everywhere else.
func checkInput(params *he.Parameters, sk *he.SecretKey, layout he.Layout, e *ledger.DisputeEvidence) (ledgerv1.Code, string) {
	ct, err := params.UnmarshalCiphertext(e.Input)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "input: %v", err)
	}
	// Exact comparisons only: a float64 scale is a dyadic rational, and
	// 2^LogInputScale is exact (no logarithm whose last bit may differ
	// between machines).
	if ct.Level() != params.MaxLevel() || ct.Scale() != math.Ldexp(1, params.Literal().LogInputScale) {
		return outcome(ledgerv1.Code_CODE_DISPUTE_FRAMING, "the input is not a fresh encryption (level %d, scale 2^%.2f)", ct.Level(), ct.LogScale())
	}
	if e.NumBlocks < 2 || e.NumBlocks > layout.Blocks {
		return outcome(ledgerv1.Code_CODE_DISPUTE_FRAMING, "%d blocks, a ciphertext holds %d", e.NumBlocks, layout.Blocks)
	}
	challengeAt := map[int]int{}
	for i, p := range e.Positions {
		if int(p) >= e.NumBlocks || i >= len(e.Challenges) || len(e.Challenges[i]) != pixels.Count {
			return outcome(ledgerv1.Code_CODE_DISPUTE_FRAMING, "challenge %d at block %d of %d", i, p, e.NumBlocks)
		}
		challengeAt[int(p)] = i
	}
	fx, err := sk.DecryptFixed(ct, InputFrac)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_DISPUTE_FRAMING, "the input does not decrypt in range: %v", err)
	}
	level := int64(1) << (InputFrac - model.InputFrac) // one grey level
	slack := int64(1)<<(InputFrac-LogDelta) - fx.Bound
	for b := 0; b < layout.Blocks; b++ {
		ch, isChallenge := challengeAt[b]
		for t := 0; t < layout.BlockSize; t++ {
			v := fx.Values[b*layout.BlockSize+t]
			p := t - layout.InputOffset
			var want int64
			switch {
			case b >= e.NumBlocks || p < 0 || p >= pixels.Count:
				want = 0
			case isChallenge:
				want = int64(e.Challenges[ch][p]) * level
			default: // the real image: the nearest grey level
				n := (v + level/2) / level
				if v < 0 {
					n = 0
				}
				want = min(n, 255) * level
			}
			if d := v - want; d > slack || d < -slack {
				return outcome(ledgerv1.Code_CODE_DISPUTE_FRAMING, "block %d slot %d decrypts %.3g grey levels from what the reveal says it holds",
					b, t, float64(d)/float64(level))
			}
		}
	}
	return ledgerv1.Code_CODE_OK, ""
}

// checkOutput decrypts the output and compares, in integer score units,
// every score of every challenge block with the proven output: fraud is
// proven when one differs by more than the tolerance plus the decoder's
// error bound (the bound goes the server's way).
func checkOutput(params *he.Parameters, sk *he.SecretKey, layout he.Layout, e *ledger.DisputeEvidence) (ledgerv1.Code, string) {
	ct, err := params.UnmarshalCiphertext(e.Output)
	if err != nil {
		return outcome(ledgerv1.Code_CODE_OK, "the output the server signed is not a ciphertext of the session's parameters: %v", err)
	}
	g := uint(guardBits)
	if e.OutputFrac < 0 || e.OutputFrac > 46 {
		return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "output fraction %d", e.OutputFrac)
	}
	fx, err := sk.DecryptFixed(ct, uint(e.OutputFrac)+g)
	if errors.Is(err, he.ErrFixedRange) {
		return outcome(ledgerv1.Code_CODE_OK, "the output decrypts to values out of any score's range: %v", err)
	}
	if err != nil {
		return outcome(ledgerv1.Code_CODE_OK, "the output does not decrypt under the session's key: %v", err)
	}
	limit := new(big.Int).Lsh(big.NewInt(e.Tolerance), g)
	limit.Add(limit, big.NewInt(fx.Bound))
	diff := new(big.Int)
	for i, p := range e.Positions {
		if i >= len(e.Proven) || len(e.Proven[i]) > layout.Outputs {
			return outcome(ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "proven row %d", i)
		}
		for r, y := range e.Proven[i] {
			v := fx.Values[int(p)*layout.BlockSize+r]
			diff.Lsh(big.NewInt(y), g)
			diff.Sub(big.NewInt(v), diff)
			if diff.CmpAbs(limit) > 0 {
				dec := new(big.Float).SetInt(big.NewInt(v))
				dec.SetMantExp(dec, -int(g))
				df, _ := dec.Float64()
				return outcome(ledgerv1.Code_CODE_OK, "challenge %d (block %d) score %d decrypts to %.1f, the proof says %d: more than %d units apart", i, p, r, df, y, e.Tolerance)
			}
		}
	}
	return outcome(ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST, "every challenge score is within %d units of the proof", e.Tolerance)
}
