package he

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"
)

// Multiparty CKKS for federated aggregation (Lattigo's multiparty package):
// N parties each hold a secret key s_i; the collective public key (CKG)
// encrypts under s = Σ s_i. A t-of-N Shamir sharing of s (Thresholdizer)
// lets any t parties decrypt: each turns its Shamir share into an additive
// share for the active subset (Combiner) and publishes a key-switching
// share of the ciphertext towards the zero key (KeySwitch), flooded with
// Gaussian noise; the sum of the t shares and the ciphertext decrypts with
// the zero key. Fewer than t parties learn nothing about s, so nobody, the
// aggregator included, can decrypt alone. Only additions are evaluated, so
// the modulus chain is one prime and no evaluation keys exist.

// AggregationParameters describe the CKKS configuration for summing
// encrypted vectors. Use [DefaultAggregationParameters].
type AggregationParameters struct {
	// LogN is log2 of the ring degree; the conjugate-invariant ring gives
	// N real slots per ciphertext.
	LogN int
	// LogQ are the ciphertext primes. Nothing is rescaled, so one prime
	// holds the sum; there is no key-switching modulus P (no evaluation
	// keys are ever made).
	LogQ []int
	// LogScale is log2 of the encoding scale.
	LogScale int
	// LogSmudgingSigma is log2 of the standard deviation of the Gaussian
	// noise each party adds to its decryption share.
	LogSmudgingSigma float64
	// MaxAbsValue bounds |v| for every encrypted value.
	MaxAbsValue float64
	// MaxSummands bounds the number of fresh ciphertexts in one sum, so
	// that a sum of MaxSummands values of MaxAbsValue stays below q/2.
	MaxSummands int
}

// DefaultAggregationParameters: N = 2^13 real slots, Q = one 60-bit prime,
// no P: log2(QP) = 60, far below the HE standard's 218 for 128-bit
// security at N = 2^13 (the same ring assumption as the inference
// parameters). Scale 2^50; values up to 16 in sums of up to 16 updates
// stay below 2^58 < q/2; smudging noise σ = 2^25 per decryption share.
var DefaultAggregationParameters = AggregationParameters{
	LogN:             13,
	LogQ:             []int{60},
	LogScale:         50,
	LogSmudgingSigma: 25,
	MaxAbsValue:      16,
	MaxSummands:      16,
}

// Validate checks the parameters without building the ring.
func (p AggregationParameters) Validate() error {
	logQ := 0
	for _, q := range p.LogQ {
		if q < 30 || q > 60 {
			return fmt.Errorf("prime of %d bits, want 30..60", q)
		}
		logQ += q
	}
	switch {
	case p.LogN < 10 || p.LogN > 15:
		return fmt.Errorf("LogN = %d out of range [10, 15]", p.LogN)
	case len(p.LogQ) < 1 || len(p.LogQ) > 4:
		return fmt.Errorf("%d ciphertext primes, want 1..4", len(p.LogQ))
	case !(p.MaxAbsValue > 0) || p.MaxAbsValue > 1<<20:
		return fmt.Errorf("MaxAbsValue = %g out of range (0, 2^20]", p.MaxAbsValue)
	case p.MaxSummands < 1 || p.MaxSummands > 1024:
		return fmt.Errorf("MaxSummands = %d out of range [1, 1024]", p.MaxSummands)
	case p.LogSmudgingSigma < 0 || p.LogSmudgingSigma > 40:
		return fmt.Errorf("LogSmudgingSigma = %g out of range [0, 40]", p.LogSmudgingSigma)
	}
	// The largest sum must stay below q/4 (a factor 2 of margin for noise).
	if top := math.Log2(p.MaxAbsValue*float64(p.MaxSummands)) + float64(p.LogScale); top > float64(logQ-2) {
		return fmt.Errorf("MaxAbsValue·MaxSummands·2^%d = 2^%.1f does not fit below q/4 = 2^%d", p.LogScale, top, logQ-2)
	}
	// The flooding noise of MaxSummands shares (6σ bound each) must stay
	// 10 bits below the scale, or decryption loses precision.
	if p.LogSmudgingSigma+math.Log2(6*float64(p.MaxSummands)) > float64(p.LogScale-10) {
		return fmt.Errorf("smudging noise 2^%g is too close to the scale 2^%d", p.LogSmudgingSigma, p.LogScale)
	}
	return nil
}

// SecurityBits returns 128 if log2(Q) is within the HE standard's 128-bit
// bound for this ring degree, else an error.
func (p AggregationParameters) SecurityBits() (int, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	bound, ok := heStandardMaxLogQP[p.LogN]
	if !ok {
		return 0, fmt.Errorf("LogN = %d is not in the HE standard's table", p.LogN)
	}
	c, err := NewAggregationContext(p)
	if err != nil {
		return 0, err
	}
	if lq := c.cp.LogQP(); lq > float64(bound) {
		return 0, fmt.Errorf("log2(Q) = %.1f exceeds %d, the 128-bit bound for N = 2^%d", lq, bound, p.LogN)
	}
	return 128, nil
}

// AggregationContext holds compiled aggregation parameters. It is
// immutable and safe for concurrent use.
type AggregationContext struct {
	p   AggregationParameters
	cp  ckks.Parameters
	tag [8]byte // first bytes of SHA-256(fingerprint), in every wire header
}

// NewAggregationContext compiles the parameters.
func NewAggregationContext(p AggregationParameters) (*AggregationContext, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("aggregation parameters: %w", err)
	}
	cp, err := ckks.NewParametersFromLiteral(ckks.ParametersLiteral{
		LogN:            p.LogN,
		LogQ:            p.LogQ,
		RingType:        ring.ConjugateInvariant,
		LogDefaultScale: p.LogScale,
	})
	if err != nil {
		return nil, fmt.Errorf("aggregation parameters: %w", err)
	}
	c := &AggregationContext{p: p, cp: cp}
	h := sha256.Sum256([]byte(c.Fingerprint()))
	copy(c.tag[:], h[:])
	return c, nil
}

// Parameters returns the literal parameters.
func (c *AggregationContext) Parameters() AggregationParameters { return c.p }

// Slots is the number of values per ciphertext.
func (c *AggregationContext) Slots() int { return c.cp.N() }

// Pieces returns the number of ciphertexts a vector of n values needs.
func (c *AggregationContext) Pieces(n int) int { return (n + c.Slots() - 1) / c.Slots() }

// Fingerprint identifies the parameters exactly (primes included).
func (c *AggregationContext) Fingerprint() string {
	return fmt.Sprintf("ckks-ci-agg/N=%d/Q=%v/scale=2^%d/smudge=2^%g/max=%g/sum=%d",
		c.cp.N(), c.cp.Q(), c.p.LogScale, c.p.LogSmudgingSigma, c.p.MaxAbsValue, c.p.MaxSummands)
}

// LogQ returns log2 of the ciphertext modulus.
func (c *AggregationContext) LogQ() float64 { return c.cp.LogQ() }

func (c *AggregationContext) scale() rlwe.Scale {
	return rlwe.NewScale(math.Exp2(float64(c.p.LogScale)))
}

func (c *AggregationContext) maxLevel() int { return c.cp.MaxLevel() }

// CRSBytes is the length of a common reference string seed.
const CRSBytes = 32

func newCRS(seed []byte) (multiparty.CRS, error) {
	if len(seed) != CRSBytes {
		return nil, fmt.Errorf("common reference string: %d bytes, want %d", len(seed), CRSBytes)
	}
	prng, err := sampling.NewKeyedPRNG(seed)
	if err != nil {
		return nil, fmt.Errorf("common reference string: %w", err)
	}
	return prng, nil
}

// checkPoints checks a list of party points: distinct, non-zero.
func checkPoints(points []uint64) error {
	seen := make(map[uint64]bool, len(points))
	for _, p := range points {
		if p == 0 {
			return errors.New("party point 0 is reserved (it is where the secret sits)")
		}
		if seen[p] {
			return fmt.Errorf("party point %d listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

// Party is one key holder: its own secret key s_i and, after the
// threshold dealing, its Shamir share of s. Keep it secret (see
// [Party.MarshalBinary]).
type Party struct {
	ctx   *AggregationContext
	point uint64
	sk    *rlwe.SecretKey

	mu        sync.Mutex
	threshold int
	points    []uint64
	tsk       *multiparty.ShamirSecretShare
	combiner  *multiparty.Combiner
}

// NewParty draws a fresh secret key for the party at Shamir point (≥ 1).
func (c *AggregationContext) NewParty(point uint64) (*Party, error) {
	if point == 0 {
		return nil, errors.New("new party: point 0 is reserved")
	}
	return &Party{ctx: c, point: point, sk: rlwe.NewKeyGenerator(c.cp).GenSecretKeyNew()}, nil
}

// Point returns the party's Shamir point.
func (p *Party) Point() uint64 { return p.point }

// Threshold returns t once the threshold shares are accepted (0 before).
func (p *Party) Threshold() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.threshold
}

// PublicKeyShare is a party's contribution to the collective public key.
type PublicKeyShare struct {
	ctx       *AggregationContext
	Point     uint64
	crsDigest [32]byte
	share     multiparty.PublicKeyGenShare
}

func crsDigest(seed []byte) [32]byte {
	return sha256.Sum256(append([]byte("veil/he/crs\x00"), seed...))
}

// PublicKeyShare computes the party's CKG share for the common reference
// string crs (every party must use the same one).
func (p *Party) PublicKeyShare(crs []byte) (*PublicKeyShare, error) {
	prng, err := newCRS(crs)
	if err != nil {
		return nil, err
	}
	ckg := multiparty.NewPublicKeyGenProtocol(p.ctx.cp)
	crp := ckg.SampleCRP(prng)
	s := ckg.AllocateShare()
	ckg.GenShare(p.sk, crp, &s)
	return &PublicKeyShare{ctx: p.ctx, Point: p.point, crsDigest: crsDigest(crs), share: s}, nil
}

// CollectiveKey is the collective public key: anyone can encrypt under
// it; decryption needs t parties.
type CollectiveKey struct {
	ctx    *AggregationContext
	pk     *rlwe.PublicKey
	crs    []byte
	points []uint64
	digest [32]byte
	wire   []byte
}

// CollectivePublicKey aggregates one share from each party (CKG). Every
// party should run it on the shares it received and compare digests.
func (c *AggregationContext) CollectivePublicKey(crs []byte, shares []*PublicKeyShare) (*CollectiveKey, error) {
	prng, err := newCRS(crs)
	if err != nil {
		return nil, err
	}
	if len(shares) == 0 {
		return nil, errors.New("collective public key: no shares")
	}
	want := crsDigest(crs)
	points := make([]uint64, len(shares))
	for i, s := range shares {
		if s.ctx.Fingerprint() != c.Fingerprint() {
			return nil, fmt.Errorf("collective public key: share of party %d made for other parameters", s.Point)
		}
		if s.crsDigest != want {
			return nil, fmt.Errorf("collective public key: share of party %d made for another common reference string", s.Point)
		}
		points[i] = s.Point
	}
	if err := checkPoints(points); err != nil {
		return nil, fmt.Errorf("collective public key: %w", err)
	}
	ckg := multiparty.NewPublicKeyGenProtocol(c.cp)
	crp := ckg.SampleCRP(prng)
	agg := ckg.AllocateShare()
	for _, s := range shares {
		ckg.AggregateShares(agg, s.share, &agg)
	}
	pk := rlwe.NewPublicKey(c.cp)
	ckg.GenPublicKey(agg, crp, pk)
	slices.Sort(points)
	return newCollectiveKey(c, pk, crs, points), nil
}

func newCollectiveKey(c *AggregationContext, pk *rlwe.PublicKey, crs []byte, points []uint64) *CollectiveKey {
	k := &CollectiveKey{ctx: c, pk: pk, crs: slices.Clone(crs), points: points}
	k.wire = k.marshal()
	k.digest = sha256.Sum256(append([]byte("veil/he/collective-key\x00"), k.wire...))
	return k
}

// Digest identifies the key (and its parameters); every update and
// decryption share names the key it was made for.
func (k *CollectiveKey) Digest() [32]byte { return k.digest }

// Points lists the parties whose shares the key aggregates.
func (k *CollectiveKey) Points() []uint64 { return slices.Clone(k.points) }

// Context returns the key's parameters.
func (k *CollectiveKey) Context() *AggregationContext { return k.ctx }

// ThresholdShare is one party's Shamir share of its own secret key, for
// one recipient. It is secret: send it over a private channel.
type ThresholdShare struct {
	ctx       *AggregationContext
	Dealer    uint64
	Recipient uint64
	Threshold int
	share     multiparty.ShamirSecretShare
}

// DealThreshold Shamir-shares the party's secret key with threshold t
// among points (which must include the party's own point): one share per
// point, in the order of points.
func (p *Party) DealThreshold(t int, points []uint64) ([]*ThresholdShare, error) {
	if err := checkPoints(points); err != nil {
		return nil, fmt.Errorf("deal threshold shares: %w", err)
	}
	if t < 1 || t > len(points) {
		return nil, fmt.Errorf("deal threshold shares: threshold %d for %d parties", t, len(points))
	}
	if !slices.Contains(points, p.point) {
		return nil, fmt.Errorf("deal threshold shares: own point %d not among the parties", p.point)
	}
	thr := multiparty.NewThresholdizer(p.ctx.cp)
	poly, err := thr.GenShamirPolynomial(t, p.sk)
	if err != nil {
		return nil, fmt.Errorf("deal threshold shares: %w", err)
	}
	out := make([]*ThresholdShare, len(points))
	for i, r := range points {
		s := thr.AllocateThresholdSecretShare()
		thr.GenShamirSecretShare(multiparty.ShamirPublicPoint(r), poly, &s)
		out[i] = &ThresholdShare{ctx: p.ctx, Dealer: p.point, Recipient: r, Threshold: t, share: s}
	}
	return out, nil
}

// AcceptThresholdShares sums the shares dealt to this party, one from each
// of points (its own included), into its share of the collective secret.
func (p *Party) AcceptThresholdShares(t int, points []uint64, shares []*ThresholdShare) error {
	if err := checkPoints(points); err != nil {
		return fmt.Errorf("accept threshold shares: %w", err)
	}
	if t < 1 || t > len(points) || !slices.Contains(points, p.point) {
		return fmt.Errorf("accept threshold shares: threshold %d, %d parties, own point %d", t, len(points), p.point)
	}
	if len(shares) != len(points) {
		return fmt.Errorf("accept threshold shares: %d shares for %d parties", len(shares), len(points))
	}
	from := make(map[uint64]bool, len(shares))
	thr := multiparty.NewThresholdizer(p.ctx.cp)
	tsk := thr.AllocateThresholdSecretShare()
	for _, s := range shares {
		switch {
		case s.ctx.Fingerprint() != p.ctx.Fingerprint():
			return fmt.Errorf("accept threshold shares: share from %d made for other parameters", s.Dealer)
		case s.Recipient != p.point:
			return fmt.Errorf("accept threshold shares: share from %d is for party %d, not %d", s.Dealer, s.Recipient, p.point)
		case s.Threshold != t:
			return fmt.Errorf("accept threshold shares: share from %d has threshold %d, want %d", s.Dealer, s.Threshold, t)
		case !slices.Contains(points, s.Dealer) || from[s.Dealer]:
			return fmt.Errorf("accept threshold shares: unexpected or repeated dealer %d", s.Dealer)
		}
		from[s.Dealer] = true
		if err := thr.AggregateShares(tsk, s.share, &tsk); err != nil {
			return fmt.Errorf("accept threshold shares: %w", err)
		}
	}
	p.setThreshold(t, slices.Sorted(slices.Values(points)), &tsk)
	return nil
}

func (p *Party) setThreshold(t int, points []uint64, tsk *multiparty.ShamirSecretShare) {
	spks := make([]multiparty.ShamirPublicPoint, len(points))
	for i, q := range points {
		spks[i] = multiparty.ShamirPublicPoint(q)
	}
	cmb := multiparty.NewCombiner(p.ctx.cp.Parameters, multiparty.ShamirPublicPoint(p.point), spks, t)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.threshold, p.points, p.tsk, p.combiner = t, points, tsk, &cmb
}

// VectorCiphertext is a vector of values encrypted under a collective key,
// in as many ciphertexts ("pieces") as it needs.
type VectorCiphertext struct {
	ctx       *AggregationContext
	keyDigest [32]byte
	summands  int
	cts       []*rlwe.Ciphertext

	once   sync.Once
	wire   []byte
	digest [32]byte
}

// Pieces returns the number of ciphertexts.
func (v *VectorCiphertext) Pieces() int { return len(v.cts) }

// Summands returns the number of fresh encryptions summed into v.
func (v *VectorCiphertext) Summands() int { return v.summands }

// KeyDigest names the collective key v is encrypted under.
func (v *VectorCiphertext) KeyDigest() [32]byte { return v.keyDigest }

// Digest is the SHA-256 of v's wire encoding (deterministic: any party that
// sums the same updates gets the same digest).
func (v *VectorCiphertext) Digest() [32]byte {
	v.encode()
	return v.digest
}

// MarshalBinary returns v's wire encoding.
func (v *VectorCiphertext) MarshalBinary() ([]byte, error) {
	v.encode()
	return slices.Clone(v.wire), nil
}

// WireSize returns the length of v's wire encoding.
func (v *VectorCiphertext) WireSize() int {
	v.encode()
	return len(v.wire)
}

// Encrypt encrypts values (each finite, |v| ≤ MaxAbsValue) under the
// collective key, zero-padded to whole ciphertexts.
func (k *CollectiveKey) Encrypt(values []float64) (*VectorCiphertext, error) {
	c := k.ctx
	if len(values) == 0 {
		return nil, errors.New("encrypt vector: no values")
	}
	for i, x := range values {
		if math.IsNaN(x) || math.Abs(x) > c.p.MaxAbsValue {
			return nil, fmt.Errorf("encrypt vector: value %d is %g, outside ±%g", i, x, c.p.MaxAbsValue)
		}
	}
	pieces := c.Pieces(len(values))
	enc := ckks.NewEncoder(c.cp)
	encryptor := rlwe.NewEncryptor(c.cp, k.pk)
	out := &VectorCiphertext{ctx: c, keyDigest: k.digest, summands: 1, cts: make([]*rlwe.Ciphertext, pieces)}
	slots := c.Slots()
	buf := make([]float64, slots)
	for i := range pieces {
		clear(buf)
		copy(buf, values[i*slots:min(len(values), (i+1)*slots)])
		pt := ckks.NewPlaintext(c.cp, c.maxLevel())
		pt.Scale = c.scale()
		if err := enc.Encode(buf, pt); err != nil {
			return nil, fmt.Errorf("encrypt vector: encode: %w", err)
		}
		ct := ckks.NewCiphertext(c.cp, 1, c.maxLevel())
		if err := encryptor.Encrypt(pt, ct); err != nil {
			return nil, fmt.Errorf("encrypt vector: %w", err)
		}
		out.cts[i] = ct
	}
	return out, nil
}

// Sum adds vectors encrypted under the same key with the same number of
// pieces. The addition is exact (mod q), so the result is deterministic.
func (c *AggregationContext) Sum(vs ...*VectorCiphertext) (*VectorCiphertext, error) {
	if len(vs) == 0 {
		return nil, errors.New("sum: nothing to add")
	}
	first := vs[0]
	summands := 0
	for i, v := range vs {
		switch {
		case v.ctx.Fingerprint() != c.Fingerprint():
			return nil, fmt.Errorf("sum: vector %d made for other parameters", i)
		case v.keyDigest != first.keyDigest:
			return nil, fmt.Errorf("sum: vector %d is under another key (%x, want %x)", i, v.keyDigest[:8], first.keyDigest[:8])
		case len(v.cts) != len(first.cts):
			return nil, fmt.Errorf("sum: vector %d has %d pieces, want %d", i, len(v.cts), len(first.cts))
		}
		summands += v.summands
	}
	if summands > c.p.MaxSummands {
		return nil, fmt.Errorf("sum: %d summands, more than the %d the parameters allow", summands, c.p.MaxSummands)
	}
	out := &VectorCiphertext{ctx: c, keyDigest: first.keyDigest, summands: summands, cts: make([]*rlwe.Ciphertext, len(first.cts))}
	rq := c.cp.RingQ().AtLevel(c.maxLevel())
	for j := range out.cts {
		ct := first.cts[j].CopyNew()
		for _, v := range vs[1:] {
			rq.Add(ct.Value[0], v.cts[j].Value[0], ct.Value[0])
			rq.Add(ct.Value[1], v.cts[j].Value[1], ct.Value[1])
		}
		out.cts[j] = ct
	}
	return out, nil
}

// DecryptionShare is one party's key-switching share of one ciphertext
// towards the zero key, for one active subset of t parties. It reveals
// nothing about the plaintext without the t-1 other shares of the subset.
type DecryptionShare struct {
	ctx              *AggregationContext
	KeyDigest        [32]byte
	CiphertextDigest [32]byte
	Point            uint64
	Subset           []uint64 // sorted, t points, Point among them
	shares           []multiparty.KeySwitchShare
}

// DecryptionShare computes the party's share of ct for the active subset
// (exactly t distinct points, its own included). Callers decide which
// ciphertexts to decrypt: a share of a single party's update would let the
// holders of the other shares read that update.
func (p *Party) DecryptionShare(ct *VectorCiphertext, subset []uint64) (*DecryptionShare, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tsk == nil {
		return nil, errors.New("decryption share: no threshold share yet")
	}
	if ct.ctx.Fingerprint() != p.ctx.Fingerprint() {
		return nil, errors.New("decryption share: ciphertext made for other parameters")
	}
	subset = slices.Sorted(slices.Values(subset))
	if err := checkPoints(subset); err != nil {
		return nil, fmt.Errorf("decryption share: %w", err)
	}
	if len(subset) != p.threshold {
		return nil, fmt.Errorf("decryption share: subset of %d parties, the threshold is %d", len(subset), p.threshold)
	}
	for _, q := range subset {
		if !slices.Contains(p.points, q) {
			return nil, fmt.Errorf("decryption share: party %d is not a key holder", q)
		}
	}
	if !slices.Contains(subset, p.point) {
		return nil, fmt.Errorf("decryption share: own point %d not in the subset %v", p.point, subset)
	}
	spks := make([]multiparty.ShamirPublicPoint, len(subset))
	for i, q := range subset {
		spks[i] = multiparty.ShamirPublicPoint(q)
	}
	additive := rlwe.NewSecretKey(p.ctx.cp)
	if err := p.combiner.GenAdditiveShare(spks, multiparty.ShamirPublicPoint(p.point), *p.tsk, additive); err != nil {
		return nil, fmt.Errorf("decryption share: %w", err)
	}
	sigma := math.Exp2(p.ctx.p.LogSmudgingSigma)
	cks, err := multiparty.NewKeySwitchProtocol(p.ctx.cp, ring.DiscreteGaussian{Sigma: sigma, Bound: 6 * sigma})
	if err != nil {
		return nil, fmt.Errorf("decryption share: %w", err)
	}
	zero := rlwe.NewSecretKey(p.ctx.cp)
	out := &DecryptionShare{ctx: p.ctx, KeyDigest: ct.keyDigest, CiphertextDigest: ct.Digest(), Point: p.point, Subset: subset,
		shares: make([]multiparty.KeySwitchShare, len(ct.cts))}
	for j, c := range ct.cts {
		out.shares[j] = cks.AllocateShare(c.Level())
		cks.GenShare(additive, zero, c, &out.shares[j])
	}
	return out, nil
}

// Decrypt combines the shares of one active subset (one share from each of
// its members, all for ct and this key) and returns the first n values.
func (k *CollectiveKey) Decrypt(ct *VectorCiphertext, shares []*DecryptionShare, n int) ([]float64, error) {
	c := k.ctx
	if ct.keyDigest != k.digest {
		return nil, errors.New("decrypt: ciphertext is under another key")
	}
	if n < 0 || n > len(ct.cts)*c.Slots() {
		return nil, fmt.Errorf("decrypt: %d values requested from %d pieces", n, len(ct.cts))
	}
	if len(shares) == 0 {
		return nil, errors.New("decrypt: no shares")
	}
	subset := shares[0].Subset
	if len(shares) != len(subset) {
		return nil, fmt.Errorf("decrypt: %d shares for an active subset of %d parties", len(shares), len(subset))
	}
	digest := ct.Digest()
	seen := make(map[uint64]bool, len(shares))
	for _, s := range shares {
		switch {
		case s.ctx.Fingerprint() != c.Fingerprint():
			return nil, fmt.Errorf("decrypt: share of party %d made for other parameters", s.Point)
		case s.KeyDigest != k.digest:
			return nil, fmt.Errorf("decrypt: share of party %d is for another key", s.Point)
		case s.CiphertextDigest != digest:
			return nil, fmt.Errorf("decrypt: share of party %d is for another ciphertext", s.Point)
		case !slices.Equal(s.Subset, subset):
			return nil, fmt.Errorf("decrypt: share of party %d is for subset %v, not %v", s.Point, s.Subset, subset)
		case !slices.Contains(subset, s.Point) || seen[s.Point]:
			return nil, fmt.Errorf("decrypt: unexpected or repeated share of party %d", s.Point)
		case len(s.shares) != len(ct.cts):
			return nil, fmt.Errorf("decrypt: share of party %d has %d pieces, want %d", s.Point, len(s.shares), len(ct.cts))
		}
		seen[s.Point] = true
	}
	return c.combine(ct, shares, n)
}

// combine sums the shares into the ciphertext and decodes it, without any
// check (the tests use it to show what an aggregator without the right
// shares gets).
func (c *AggregationContext) combine(ct *VectorCiphertext, shares []*DecryptionShare, n int) ([]float64, error) {
	cks, err := multiparty.NewKeySwitchProtocol(c.cp, ring.DiscreteGaussian{Sigma: 1, Bound: 6})
	if err != nil {
		return nil, err
	}
	enc := ckks.NewEncoder(c.cp)
	dec := rlwe.NewDecryptor(c.cp, rlwe.NewSecretKey(c.cp))
	out := make([]float64, 0, len(ct.cts)*c.Slots())
	buf := make([]float64, c.Slots())
	for j, piece := range ct.cts {
		agg := cks.AllocateShare(piece.Level())
		for _, s := range shares {
			if err := cks.AggregateShares(agg, s.shares[j], &agg); err != nil {
				return nil, fmt.Errorf("decrypt: %w", err)
			}
		}
		switched := ckks.NewCiphertext(c.cp, 1, piece.Level())
		cks.KeySwitch(piece, agg, switched)
		pt := dec.DecryptNew(switched)
		if err := enc.Decode(pt, buf); err != nil {
			return nil, fmt.Errorf("decrypt: decode: %w", err)
		}
		out = append(out, buf...)
	}
	return out[:n], nil
}
