package he

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/ring/ringqp"
	"github.com/tuneinsight/lattigo/v6/utils/bignum"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"
)

// SessionSeedSize is the size of a session seed.
const SessionSeedSize = 32

// SessionSeed is the 32 bytes all of one session's key material is derived
// from: the secret key, the errors and uniform halves of the public,
// relinearisation and rotation keys, and so every seed of their compressed
// encodings. Whoever holds it can rebuild the exact key bundle (and check it
// against the SHA-256 a server acknowledged) and decrypt every ciphertext of
// the session: it is as secret as the secret key, until a client reveals it
// in a dispute (docs/market.md).
type SessionSeed [SessionSeedSize]byte

// NewSessionSeed draws a fresh seed from the system's secure source.
func NewSessionSeed() (SessionSeed, error) {
	var s SessionSeed
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("session seed: %w", err)
	}
	return s, nil
}

const seedDomain = "veil/he/v1/session-keys\x00"

// subseed derives the key of one sampling stream: SHA-256 over the domain,
// the stream's label, an index (the Galois element for a rotation key) and
// the session seed.
func (s SessionSeed) subseed(label string, index uint64) []byte {
	h := sha256.New()
	h.Write([]byte(seedDomain))
	h.Write([]byte(label))
	h.Write([]byte{0})
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], index)
	h.Write(n[:])
	h.Write(s[:])
	return h.Sum(nil)
}

// stream is a buffered reader over a keyed PRNG (BLAKE2b XOF).
type stream struct {
	prng *sampling.KeyedPRNG
	buf  []byte
	off  int
}

func newStream(key []byte) *stream {
	prng, err := sampling.NewKeyedPRNG(key)
	if err != nil {
		// BLAKE2b accepts any key of at most 64 bytes; ours are 32.
		panic(fmt.Errorf("keyed PRNG: %w", err))
	}
	return &stream{prng: prng, buf: make([]byte, 1<<14), off: 1 << 14}
}

func (s *stream) next(n int) []byte {
	if s.off+n > len(s.buf) {
		rest := copy(s.buf, s.buf[s.off:])
		if _, err := s.prng.Read(s.buf[rest:]); err != nil {
			panic(fmt.Errorf("keyed PRNG: %w", err))
		}
		s.off = 0
	}
	b := s.buf[s.off : s.off+n]
	s.off += n
	return b
}

// ternary draws a uniform value in {-1, 0, 1} from bytes below 255 (255 is
// 3·85, so b mod 3 is exactly uniform), with integer operations only.
func (s *stream) ternary() int64 {
	for {
		if b := s.next(1)[0]; b < 255 {
			return int64(b%3) - 1
		}
	}
}

// cdt is a cumulative distribution table of a discrete Gaussian over
// [-bound, bound]: a uniform 64-bit r maps to -bound plus the number of
// entries r is not below.
type cdt struct {
	bound  int64
	thresh []uint64
}

func (t *cdt) sample(s *stream) int64 {
	r := binary.LittleEndian.Uint64(s.next(8))
	var k int64
	for _, th := range t.thresh { // every entry, whatever r: no timing on the value
		k += int64(bits64GE(r, th))
	}
	return k - t.bound
}

// bits64GE is 1 if a >= b, else 0, without a branch on the values: a - b
// borrows exactly when a < b.
func bits64GE(a, b uint64) uint64 {
	_, borrow := bits.Sub64(a, b, 0)
	return borrow ^ 1
}

var cdtCache sync.Map // ring.DiscreteGaussian -> *cdt

// cdtFor builds the table of the discrete Gaussian ρ(x) = exp(-x²/2σ²) on
// |x| ≤ ⌊bound⌋ with big.Float arithmetic (128-bit precision), so that the
// table, and every sample drawn with it, is the same on every machine: no
// float64 operation (whose fused or assembly forms differ between
// architectures) decides a key. Its distance to the exact truncated discrete
// Gaussian is below 2^-60 per sample.
func cdtFor(d ring.DiscreteGaussian) (*cdt, error) {
	if t, ok := cdtCache.Load(d); ok {
		return t.(*cdt), nil
	}
	if !(d.Sigma > 0 && d.Sigma < 1<<20) || !(d.Bound >= 1 && d.Bound < 1<<10) {
		return nil, fmt.Errorf("error distribution σ = %g, bound %g: not a small discrete Gaussian", d.Sigma, d.Bound)
	}
	const prec = 128
	bound := int64(math.Floor(d.Bound))
	twoSigma2 := new(big.Float).SetPrec(prec).SetFloat64(d.Sigma)
	twoSigma2.Mul(twoSigma2, twoSigma2)
	twoSigma2.Mul(twoSigma2, big.NewFloat(2).SetPrec(prec))
	rho := make([]*big.Float, 2*bound+1)
	sum := new(big.Float).SetPrec(prec)
	for x := -bound; x <= bound; x++ {
		e := new(big.Float).SetPrec(prec).SetInt64(-x * x)
		e.Quo(e, twoSigma2)
		rho[x+bound] = bignum.Exp(e)
		sum.Add(sum, rho[x+bound])
	}
	two64 := new(big.Float).SetPrec(prec).SetMantExp(big.NewFloat(1), 64)
	acc := new(big.Float).SetPrec(prec)
	t := &cdt{bound: bound}
	for i := 0; i < len(rho)-1; i++ {
		acc.Add(acc, rho[i])
		v := new(big.Float).SetPrec(prec).Quo(acc, sum)
		v.Mul(v, two64)
		u, _ := v.Uint64() // truncation toward zero: deterministic
		t.thresh = append(t.thresh, u)
	}
	cdtCache.Store(d, t)
	return t, nil
}

// setSmall writes small signed integers into every residue of a QP
// polynomial (coefficient domain).
func setSmall(moduli []uint64, p ring.Poly, vals []int64) {
	for i, q := range moduli {
		c := p.Coeffs[i]
		for j, v := range vals {
			if v >= 0 {
				c[j] = uint64(v)
			} else {
				c[j] = q - uint64(-v)
			}
		}
	}
}

// keyGen holds what deriving one session's keys needs.
type keyGen struct {
	c      *Parameters
	seed   SessionSeed
	errors *cdt
	ringQP ringqp.Ring
	vals   []int64
}

func (c *Parameters) keyGen(seed SessionSeed) (*keyGen, error) {
	xe, ok := c.cp.Xe().(ring.DiscreteGaussian)
	if !ok {
		return nil, fmt.Errorf("session keys: error distribution %T is not a discrete Gaussian", c.cp.Xe())
	}
	if xs, ok := c.cp.Xs().(ring.Ternary); !ok || xs.H != 0 || math.Abs(xs.P-2.0/3.0) > 1e-9 {
		return nil, fmt.Errorf("session keys: secret distribution %+v is not uniform ternary", c.cp.Xs())
	}
	t, err := cdtFor(xe)
	if err != nil {
		return nil, fmt.Errorf("session keys: %w", err)
	}
	return &keyGen{c: c, seed: seed, errors: t, ringQP: *c.cp.RingQP(), vals: make([]int64, c.cp.N())}, nil
}

// small fills p (QP, coefficient domain, at p's levels) with small integers
// drawn by draw, then moves it to the NTT and Montgomery domain.
func (g *keyGen) small(p ringqp.Poly, draw func() int64) {
	for i := range g.vals {
		g.vals[i] = draw()
	}
	levelQ, levelP := p.LevelQ(), p.LevelP()
	setSmall(g.c.cp.Q()[:levelQ+1], p.Q, g.vals)
	if levelP >= 0 {
		setSmall(g.c.cp.P()[:levelP+1], p.P, g.vals)
	}
	r := g.ringQP.AtLevel(levelQ, levelP)
	r.NTT(p, p)
	r.MForm(p, p)
}

// SecretKeyFromSeed derives the session's secret key: uniform ternary
// coefficients drawn from the seed's "sk" stream.
func (c *Parameters) SecretKeyFromSeed(seed SessionSeed) (*SecretKey, error) {
	g, err := c.keyGen(seed)
	if err != nil {
		return nil, err
	}
	return g.secretKey(), nil
}

func (g *keyGen) secretKey() *SecretKey {
	sk := rlwe.NewSecretKey(g.c.cp)
	s := newStream(g.seed.subseed("sk", 0))
	g.small(sk.Value, s.ternary)
	seed := g.seed
	return &SecretKey{params: g.c, sk: sk, seed: &seed}
}

// zero writes the first half of a secret-key encryption of zero in QP,
// b = e - a·s, into b (NTT and Montgomery domain, at b's levels), with a read
// from uniform (its second half, which the compressed encoding regenerates
// from the key's seed) and e from errs.
func (g *keyGen) zero(b ringqp.Poly, s ringqp.Poly, uniform ringqp.UniformSampler, errs *stream) {
	levelQ, levelP := b.LevelQ(), b.LevelP()
	r := g.ringQP.AtLevel(levelQ, levelP)
	a := r.NewPoly()
	uniform.AtLevel(levelQ, levelP).Read(a)
	g.small(b, func() int64 { return g.errors.sample(errs) })
	r.MulCoeffsMontgomeryThenSub(a, s, b)
}

// evaluationKey fills a compressed evaluation key that switches from skIn
// (Q part, NTT and Montgomery domain) to skOut: every gadget row is
// e - a·skOut + (P·w_i)·skIn, with the a's drawn, row by row, from a PRNG
// keyed by the key's seed exactly as rlwe.EvaluationKey.Expand redraws them.
func (g *keyGen) evaluationKey(evk *rlwe.EvaluationKey, skIn ring.Poly, skOut ringqp.Poly, label string, index uint64) error {
	evk.Seed = g.seed.subseed(label+"/a", index)
	prng, err := sampling.NewKeyedPRNG(evk.Seed)
	if err != nil {
		return err
	}
	uniform := ringqp.NewUniformSampler(prng, g.ringQP)
	errs := newStream(g.seed.subseed(label+"/e", index))
	for i := range evk.Value {
		for j := range evk.Value[i] {
			g.zero(evk.Value[i][j][0], skOut, uniform, errs)
		}
	}
	buff := g.c.cp.RingQ().NewPoly()
	return rlwe.AddPolyTimesGadgetVectorToGadgetCiphertext(skIn, []rlwe.GadgetCiphertext{evk.GadgetCiphertext}, g.ringQP, buff)
}

// keyGenWorkers is the number of goroutines that generate rotation keys
// (a client's key generation is on its critical path once per session).
const keyGenWorkers = 2

// KeysFromSeed derives a session's secret key and its evaluation keys (the
// public key, the relinearisation key and a rotation key per Galois
// element) from seed, deterministically: the same seed, parameters and
// Galois elements give the same key bundle, byte for byte, on every
// machine. Every sample is drawn with integer arithmetic from a keyed
// BLAKE2b stream (uniform halves with Lattigo's uniform sampler, errors from
// a table built with big.Float), so nothing depends on float64 rounding.
// The keys have the distributions of Lattigo's key generator (uniform
// ternary secret, discrete Gaussian errors of the parameters' σ and bound).
func (c *Parameters) KeysFromSeed(seed SessionSeed, galEls []uint64) (*SecretKey, *EvaluationKeys, error) {
	g, err := c.keyGen(seed)
	if err != nil {
		return nil, nil, err
	}
	sk := g.secretKey()
	keys, err := g.evaluationKeys(sk, galEls)
	if err != nil {
		return nil, nil, err
	}
	return sk, keys, nil
}

func (g *keyGen) evaluationKeys(sk *SecretKey, galEls []uint64) (*EvaluationKeys, error) {
	c := g.c
	if len(galEls) > MaxGaloisKeys {
		return nil, fmt.Errorf("generate keys: %d rotation keys requested, more than %d", len(galEls), MaxGaloisKeys)
	}
	galEls = slices.Clone(galEls)
	slices.Sort(galEls)
	galEls = slices.Compact(galEls)
	for _, el := range galEls {
		if el == 0 || el%2 == 0 || el >= c.cp.RingQ().NthRoot() {
			return nil, fmt.Errorf("generate keys: %d is not a Galois element of this ring", el)
		}
	}
	k := &EvaluationKeys{params: c}
	// Public key (-a·s + e, a): a from the public-key seed, which the wire
	// format carries.
	k.pkSeed = g.seed.subseed("pk/a", 0)
	prng, err := sampling.NewKeyedPRNG(k.pkSeed)
	if err != nil {
		return nil, err
	}
	k.pk = rlwe.NewPublicKey(c.cp)
	pkU := ringqp.NewUniformSampler(prng, g.ringQP)
	pkU.Read(k.pk.Value[1])
	pkErrs := newStream(g.seed.subseed("pk/e", 0))
	g.small(k.pk.Value[0], func() int64 { return g.errors.sample(pkErrs) })
	g.ringQP.MulCoeffsMontgomeryThenSub(k.pk.Value[1], sk.sk.Value, k.pk.Value[0])

	compressed := rlwe.EvaluationKeyParameters{Compressed: true}
	// Relinearisation key: switches s² to s.
	k.rlk = rlwe.NewRelinearizationKey(c.cp, compressed)
	ringQ := c.cp.RingQ().AtLevel(k.rlk.LevelQ())
	s2 := ringQ.NewPoly()
	ringQ.MulCoeffsMontgomery(sk.sk.Value.Q, sk.sk.Value.Q, s2)
	if err := g.evaluationKey(&k.rlk.EvaluationKey, s2, sk.sk.Value, "rlk", 0); err != nil {
		return nil, fmt.Errorf("relinearisation key: %w", err)
	}
	// Rotation keys: switch π_{g⁻¹}(s) to s, as rlwe.KeyGenerator does.
	// Each key comes from its own sub-seed, so they are generated on
	// keyGenWorkers goroutines (each with its own sampling buffer) and the
	// bundle is the same whatever the order.
	k.gks = make([]*rlwe.GaloisKey, len(galEls))
	workers := min(keyGenWorkers, runtime.NumCPU())
	gens := make([]*keyGen, workers)
	for w := range gens {
		gw := *g
		gw.vals = make([]int64, len(g.vals))
		gens[w] = &gw
	}
	if err := forEach(workers, len(galEls), func(w, i int) error {
		gw, el := gens[w], galEls[i]
		gk := rlwe.NewGaloisKey(c.cp, compressed)
		gk.GaloisElement = el
		index, err := ring.AutomorphismNTTIndex(c.cp.N(), c.cp.RingQ().NthRoot(), c.cp.ModInvGaloisElement(el))
		if err != nil {
			return fmt.Errorf("rotation key %d: %w", el, err)
		}
		skOut := gw.ringQP.NewPoly()
		c.cp.RingQ().AutomorphismNTTWithIndex(sk.sk.Value.Q, index, skOut.Q)
		if c.cp.RingP() != nil {
			c.cp.RingP().AutomorphismNTTWithIndex(sk.sk.Value.P, index, skOut.P)
		}
		if err := gw.evaluationKey(&gk.EvaluationKey, sk.sk.Value.Q, skOut, "gk", el); err != nil {
			return fmt.Errorf("rotation key %d: %w", el, err)
		}
		k.gks[i] = gk
		return nil
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// Seed returns the seed the key was derived from, if it was.
func (s *SecretKey) Seed() (SessionSeed, bool) {
	if s.seed == nil {
		return SessionSeed{}, false
	}
	return *s.seed, true
}

// ErrNoSeed is returned for operations that need a key's seed when the key
// was not derived from one (decoded from a VSK1 file, say).
var ErrNoSeed = errors.New("the secret key was not derived from a session seed")
