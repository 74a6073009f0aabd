package he

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// committee is N parties after the setup: collective key, t-of-N shares.
type committee struct {
	ctx     *AggregationContext
	parties []*Party
	points  []uint64
	key     *CollectiveKey
	t       int
}

func newCommittee(tb testing.TB, n, t int) *committee {
	tb.Helper()
	cm, err := buildCommittee(n, t)
	if err != nil {
		tb.Fatal(err)
	}
	return cm
}

func buildCommittee(n, t int) (*committee, error) {
	c, err := NewAggregationContext(DefaultAggregationParameters)
	if err != nil {
		return nil, err
	}
	crs := make([]byte, CRSBytes)
	rand.Read(crs)
	cm := &committee{ctx: c, t: t}
	for i := range n {
		p, err := c.NewParty(uint64(i + 1))
		if err != nil {
			return nil, err
		}
		cm.parties = append(cm.parties, p)
		cm.points = append(cm.points, p.Point())
	}
	var shares []*PublicKeyShare
	dealt := make([][]*ThresholdShare, n) // dealt[recipient]
	for _, p := range cm.parties {
		s, err := p.PublicKeyShare(crs)
		if err != nil {
			return nil, err
		}
		shares = append(shares, s)
		ts, err := p.DealThreshold(t, cm.points)
		if err != nil {
			return nil, err
		}
		for j, s := range ts {
			dealt[j] = append(dealt[j], s)
		}
	}
	if cm.key, err = c.CollectivePublicKey(crs, shares); err != nil {
		return nil, err
	}
	for i, p := range cm.parties {
		if err := p.AcceptThresholdShares(t, cm.points, dealt[i]); err != nil {
			return nil, err
		}
	}
	return cm, nil
}

var sharedCommittee = sync.OnceValues(func() (*committee, error) { return buildCommittee(4, 3) })

// committee43 is a 3-of-4 committee shared by the tests.
func committee43(tb testing.TB) *committee {
	tb.Helper()
	cm, err := sharedCommittee()
	if err != nil {
		tb.Fatal(err)
	}
	return cm
}

func randomVector(rng *mrand.Rand, n int, amp float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = (2*rng.Float64() - 1) * amp
	}
	return v
}

func (cm *committee) decrypt(tb testing.TB, ct *VectorCiphertext, subset []uint64, n int) []float64 {
	tb.Helper()
	var shares []*DecryptionShare
	for _, q := range subset {
		s, err := cm.parties[q-1].DecryptionShare(ct, subset)
		if err != nil {
			tb.Fatal(err)
		}
		shares = append(shares, s)
	}
	out, err := cm.key.Decrypt(ct, shares, n)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func TestAggregationParametersAre128Bit(t *testing.T) {
	bits, err := DefaultAggregationParameters.SecurityBits()
	if err != nil || bits != 128 {
		t.Fatalf("default aggregation parameters: %d bits, %v", bits, err)
	}
	// Four 60-bit primes at N = 2^11 exceed the 54-bit bound.
	p := DefaultAggregationParameters
	p.LogN, p.LogQ = 11, []int{60}
	if _, err := p.SecurityBits(); err == nil {
		t.Fatal("log2(Q) = 60 at N = 2^11 accepted as 128-bit")
	}
	p = DefaultAggregationParameters
	p.MaxAbsValue = 1 << 12
	if err := p.Validate(); err == nil {
		t.Fatal("values that overflow q/4 in a full sum accepted")
	}
}

// precisionBound is the largest error the tests accept on a decrypted sum:
// the flooding noise of t shares, σ = 2^25 each, becomes noise of standard
// deviation about σ·√t·√N / Δ ≈ 2^(25+0.8+6.5-50) ≈ 2^-17.7 per slot; the
// bound is 2^-13, about 25 standard deviations.
const precisionBound = 1.0 / (1 << 13)

// The encrypted aggregate equals the plaintext sum within CKKS precision,
// for every t-subset of the parties, and with one party missing.
func TestAggregateEqualsPlaintextSum(t *testing.T) {
	cm := committee43(t)
	rng := mrand.New(mrand.NewPCG(1, 2))
	const n = 20000 // three pieces
	sum := make([]float64, n)
	var cts []*VectorCiphertext
	for range cm.parties {
		v := randomVector(rng, n, 4)
		for i := range v {
			sum[i] += v[i]
		}
		ct, err := cm.key.Encrypt(v)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	agg, err := cm.ctx.Sum(cts...)
	if err != nil {
		t.Fatal(err)
	}
	if agg.Pieces() != 3 || agg.Summands() != 4 {
		t.Fatalf("aggregate has %d pieces and %d summands", agg.Pieces(), agg.Summands())
	}
	for _, subset := range [][]uint64{{1, 2, 3}, {1, 2, 4}, {1, 3, 4}, {2, 3, 4}} {
		got := cm.decrypt(t, agg, subset, n)
		d := maxAbsDiff(got, sum)
		t.Logf("subset %v: max |decrypted - sum| = %.3g (2^%.1f)", subset, d, math.Log2(d))
		if d > precisionBound {
			t.Fatalf("subset %v: error %.3g above the bound %.3g", subset, d, precisionBound)
		}
	}
	// Sums are deterministic: another party adding the same updates gets
	// the same bytes.
	again, _ := cm.ctx.Sum(cts...)
	if again.Digest() != agg.Digest() {
		t.Fatal("two sums of the same ciphertexts differ")
	}
}

// Nothing an aggregator holds decrypts without t parties: fewer than t
// shares, shares of the aggregate applied to one party's update, or shares
// mixed from different subsets give noise of the order of q/Δ, not values.
func TestAggregatorCannotDecryptAlone(t *testing.T) {
	cm := committee43(t)
	rng := mrand.New(mrand.NewPCG(3, 4))
	const n = 1000
	v1, v2, v3 := randomVector(rng, n, 1), randomVector(rng, n, 1), randomVector(rng, n, 1)
	c1, _ := cm.key.Encrypt(v1)
	c2, _ := cm.key.Encrypt(v2)
	c3, _ := cm.key.Encrypt(v3)
	agg, err := cm.ctx.Sum(c1, c2, c3)
	if err != nil {
		t.Fatal(err)
	}
	share := func(q uint64, ct *VectorCiphertext, subset []uint64) *DecryptionShare {
		s, err := cm.parties[q-1].DecryptionShare(ct, subset)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	subset := []uint64{1, 2, 3}
	s1, s2, s3 := share(1, agg, subset), share(2, agg, subset), share(3, agg, subset)

	// The checked path refuses.
	if _, err := cm.key.Decrypt(agg, []*DecryptionShare{s1, s2}, n); err == nil {
		t.Fatal("Decrypt accepted 2 shares for a subset of 3")
	}
	if _, err := cm.key.Decrypt(c1, []*DecryptionShare{s1, s2, s3}, n); err == nil {
		t.Fatal("Decrypt accepted shares of the aggregate for another ciphertext")
	}
	// What an aggregator computes if it goes around the checks.
	garbage := func(what string, ct *VectorCiphertext, want []float64, shares ...*DecryptionShare) {
		t.Helper()
		got, err := cm.ctx.combine(ct, shares, n)
		if err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(got, want)
		t.Logf("%s: max error %.3g", what, d)
		if d < 1e3 {
			t.Fatalf("%s: decrypted to within %.3g of the plaintext", what, d)
		}
	}
	sum := make([]float64, n)
	for i := range sum {
		sum[i] = v1[i] + v2[i] + v3[i]
	}
	garbage("2 of 3 shares", agg, sum, s1, s2)
	garbage("no shares", agg, sum)
	garbage("aggregate's shares on party 1's update", c1, v1, s1, s2, s3)
	s4 := share(4, agg, []uint64{2, 3, 4})
	garbage("shares of two subsets mixed", agg, sum, s1, s2, s4)
	// A party refuses a subset without itself, or of the wrong size.
	if _, err := cm.parties[0].DecryptionShare(agg, []uint64{2, 3, 4}); err == nil {
		t.Fatal("party 1 made a share for a subset without itself")
	}
	if _, err := cm.parties[0].DecryptionShare(agg, []uint64{1, 2}); err == nil {
		t.Fatal("party 1 made a share for a subset smaller than t")
	}
	// The correct subset does decrypt (the test above is not vacuous).
	if d := maxAbsDiff(cm.decrypt(t, agg, subset, n), sum); d > precisionBound {
		t.Fatalf("honest decryption off by %.3g", d)
	}
}

// A wrong share (another party's share, or a share made with a wrong key)
// does not decrypt to the sum; two t-subsets then disagree.
func TestWrongShareIsVisible(t *testing.T) {
	cm := committee43(t)
	rng := mrand.New(mrand.NewPCG(5, 6))
	const n = 500
	v := randomVector(rng, n, 1)
	ct, _ := cm.key.Encrypt(v)
	other := newCommittee(t, 4, 3) // same points, other keys
	subA, subB := []uint64{1, 2, 3}, []uint64{1, 2, 4}
	good := func(q uint64, sub []uint64) *DecryptionShare {
		s, err := cm.parties[q-1].DecryptionShare(ct, sub)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	bad, err := other.parties[0].DecryptionShare(ct, subA) // party 1 with a wrong secret
	if err != nil {
		t.Fatal(err)
	}
	a, err := cm.key.Decrypt(ct, []*DecryptionShare{bad, good(2, subA), good(3, subA)}, n)
	if err != nil {
		t.Fatal(err)
	}
	b := cm.decrypt(t, ct, subB, n)
	if d := maxAbsDiff(b, v); d > precisionBound {
		t.Fatalf("honest subset off by %.3g", d)
	}
	if d := maxAbsDiff(a, b); d < 1 {
		t.Fatalf("a wrong share changed the result by only %.3g", d)
	}
}

func TestCollectiveKeyChecksShares(t *testing.T) {
	c, _ := NewAggregationContext(DefaultAggregationParameters)
	crs1, crs2 := bytes.Repeat([]byte{1}, CRSBytes), bytes.Repeat([]byte{2}, CRSBytes)
	p1, _ := c.NewParty(1)
	p2, _ := c.NewParty(2)
	s1, _ := p1.PublicKeyShare(crs1)
	s2, _ := p2.PublicKeyShare(crs2)
	if _, err := c.CollectivePublicKey(crs1, []*PublicKeyShare{s1, s2}); err == nil {
		t.Fatal("share for another CRS accepted")
	}
	if _, err := c.CollectivePublicKey(crs1, []*PublicKeyShare{s1, s1}); err == nil {
		t.Fatal("the same party's share twice accepted")
	}
	if _, err := c.CollectivePublicKey(crs1[:5], []*PublicKeyShare{s1}); err == nil {
		t.Fatal("short CRS accepted")
	}
	if _, err := p1.DealThreshold(3, []uint64{1, 2}); err == nil {
		t.Fatal("threshold above the number of parties accepted")
	}
	if _, err := p1.DealThreshold(2, []uint64{2, 3}); err == nil {
		t.Fatal("dealing without the dealer's own point accepted")
	}
}

func TestEncryptRefusesOutOfRangeValues(t *testing.T) {
	cm := committee43(t)
	for _, v := range []float64{math.NaN(), math.Inf(1), 17, -16.5} {
		if _, err := cm.key.Encrypt([]float64{0, v}); err == nil {
			t.Fatalf("value %g encrypted", v)
		}
	}
	if _, err := cm.key.Encrypt(nil); err == nil {
		t.Fatal("empty vector encrypted")
	}
}

// Every wire format round-trips, and every decoder refuses bad input with
// ErrMultiparty.
func TestMultipartyWireFormats(t *testing.T) {
	cm := committee43(t)
	c := cm.ctx
	v := randomVector(mrand.New(mrand.NewPCG(7, 8)), 9000, 2)
	ct, err := cm.key.Encrypt(v)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := ct.MarshalBinary()
	if len(wire) != ct.WireSize() {
		t.Fatal("WireSize disagrees with MarshalBinary")
	}
	back, err := cm.key.UnmarshalVectorCiphertext(wire, 2)
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest() != ct.Digest() {
		t.Fatal("vector ciphertext does not round-trip")
	}
	if d := maxAbsDiff(cm.decrypt(t, back, []uint64{1, 2, 3}, len(v)), v); d > precisionBound {
		t.Fatalf("decoded ciphertext decrypts with error %.3g", d)
	}
	// Collective key.
	kw, _ := cm.key.MarshalBinary()
	k2, err := c.UnmarshalCollectiveKey(kw)
	if err != nil || k2.Digest() != cm.key.Digest() {
		t.Fatalf("collective key does not round-trip: %v", err)
	}
	// Party secret, then a share from the restored party.
	pw, _ := cm.parties[1].MarshalBinary()
	p2, err := c.UnmarshalParty(pw)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := cm.parties[0].DecryptionShare(ct, []uint64{1, 2, 3})
	s2, _ := p2.DecryptionShare(ct, []uint64{1, 2, 3})
	s3, _ := cm.parties[2].DecryptionShare(ct, []uint64{1, 2, 3})
	// Decryption shares over the wire.
	var decoded []*DecryptionShare
	for _, s := range []*DecryptionShare{s1, s2, s3} {
		b, _ := s.MarshalBinary()
		d, err := c.UnmarshalDecryptionShare(b)
		if err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, d)
	}
	got, err := cm.key.Decrypt(ct, decoded, len(v))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(got, v); d > precisionBound {
		t.Fatalf("restored party's share: error %.3g", d)
	}

	other := newCommittee(t, 4, 3)
	otherCT, _ := other.key.Encrypt(v)
	otherWire, _ := otherCT.MarshalBinary()
	small := DefaultAggregationParameters
	small.LogN = 12
	sc, err := NewAggregationContext(small)
	if err != nil {
		t.Fatal(err)
	}
	smallParty, _ := sc.NewParty(1)
	smallShare, _ := smallParty.PublicKeyShare(make([]byte, CRSBytes))
	smallWire, _ := smallShare.MarshalBinary()

	mutate := func(f func(b []byte)) []byte { b := slices.Clone(wire); f(b); return b }
	vacHeader := 12 + 32 // magic, tag, key digest
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than a header"},
		{"truncated", wire[:len(wire)-1], "bytes of coefficients"},
		{"trailing byte", append(slices.Clone(wire), 0), "bytes of coefficients"},
		{"bad magic", mutate(func(b []byte) { b[0] = 'X' }), "magic"},
		{"other parameters", mutate(func(b []byte) { b[5] ^= 1 }), "other parameters"},
		{"under another key", otherWire, "another key"},
		{"zero summands", mutate(func(b []byte) { b[vacHeader], b[vacHeader+1] = 0, 0 }), "summands"},
		{"too many summands", mutate(func(b []byte) { b[vacHeader] = 200 }), "summands"},
		{"wrong level", mutate(func(b []byte) { b[vacHeader+4] = 1 }), "level"},
		{"wrong scale", mutate(func(b []byte) { b[vacHeader+5] ^= 1 }), "scale"},
		{"coefficient above q", mutate(func(b []byte) {
			for i := vacHeader + 13; i < vacHeader+13+8; i++ {
				b[i] = 0xff
			}
		}), "not below the modulus"},
	}
	for _, tc := range cases {
		_, err := cm.key.UnmarshalVectorCiphertext(tc.data, 2)
		if !errors.Is(err, ErrMultiparty) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := cm.key.UnmarshalVectorCiphertext(wire, 3); err == nil || !strings.Contains(err.Error(), "pieces") {
		t.Errorf("wrong number of pieces: %v", err)
	}
	if _, err := c.UnmarshalPublicKeyShare(smallWire); !errors.Is(err, ErrMultiparty) {
		t.Errorf("share for other parameters: %v", err)
	}
	shareWire, _ := s1.MarshalBinary()
	for _, bad := range [][]byte{shareWire[:len(shareWire)-3], shareWire[:40], append(slices.Clone(shareWire), 1)} {
		if _, err := c.UnmarshalDecryptionShare(bad); !errors.Is(err, ErrMultiparty) {
			t.Errorf("bad decryption share (%d bytes): %v", len(bad), err)
		}
	}
	tsWire, _ := mustDeal(t, cm.parties[0])[1].MarshalBinary()
	if _, err := c.UnmarshalThresholdShare(tsWire[:len(tsWire)-1]); !errors.Is(err, ErrMultiparty) {
		t.Errorf("truncated threshold share: %v", err)
	}
	if _, err := c.UnmarshalParty(pw[:len(pw)-1]); !errors.Is(err, ErrMultiparty) {
		t.Errorf("truncated party: %v", err)
	}
	if _, err := c.UnmarshalCollectiveKey(kw[:len(kw)-1]); !errors.Is(err, ErrMultiparty) {
		t.Errorf("truncated collective key: %v", err)
	}
}

func mustDeal(t *testing.T, p *Party) []*ThresholdShare {
	s, err := p.DealThreshold(3, []uint64{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
