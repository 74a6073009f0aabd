package he

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

func bundleOf(t testing.TB, c *Parameters, seed SessionSeed, galEls []uint64) []byte {
	t.Helper()
	_, keys, err := c.KeysFromSeed(seed, galEls)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same seed gives the same bundle byte for byte (what every ledger node
// recomputes in a dispute); another seed, or one more rotation key, another.
func TestKeysFromSeedAreDeterministic(t *testing.T) {
	f := getFix(t)
	gal := f.net.GaloisElements()
	seed := SessionSeed{1, 2, 3}
	a, b := bundleOf(t, f.ctx, seed, gal), bundleOf(t, f.ctx, seed, gal)
	if !bytes.Equal(a, b) {
		t.Fatal("two derivations from one seed differ")
	}
	// Galois elements in another order are the same set: the same bundle.
	rev := append([]uint64(nil), gal...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if !bytes.Equal(a, bundleOf(t, f.ctx, seed, rev)) {
		t.Fatal("the order of the Galois elements changed the bundle")
	}
	if bytes.Equal(a, bundleOf(t, f.ctx, SessionSeed{1, 2, 4}, gal)) {
		t.Fatal("two seeds gave one bundle")
	}
	if bytes.Equal(a, bundleOf(t, f.ctx, seed, gal[1:])) {
		t.Fatal("a bundle without one rotation key is the same")
	}
	// GenEvaluationKeys of a seeded secret key is the same derivation.
	sk, err := f.ctx.SecretKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	k, err := sk.GenEvaluationKeys(gal)
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := k.MarshalBinary(); !bytes.Equal(w, a) {
		t.Fatal("GenEvaluationKeys of a seeded key differs from KeysFromSeed")
	}
}

// A test vector: the digest of the default network's bundle for one seed.
// Any change to the derivation (or to the wire format) changes it, and with
// it every keys digest a dispute checks: that is a consensus change.
func TestKeysFromSeedTestVector(t *testing.T) {
	f := getFix(t)
	d := sha256.Sum256(bundleOf(t, f.ctx, SessionSeed{0: 0x76, 31: 0x01}, f.net.GaloisElements()))
	const want = "130fa453ec412fd689a8373ad0d99cbbe4e69dec98980f70a64273b1ac0f08b0"
	got := hex.EncodeToString(d[:])
	if got != want {
		t.Fatalf("bundle digest %s, want %s: the key derivation changed", got, want)
	}
	t.Logf("bundle digest %s", got)
}

// The keys work: a server decodes the bundle, evaluates, and the client's
// seeded secret key decrypts (TestEncryptedInferenceMatchesPlaintext does it
// at scale); here, and the public key is an encryption of zero with small
// noise.
func TestSeededKeysHaveSmallNoise(t *testing.T) {
	f := getFix(t)
	seed := SessionSeed{9}
	sk, keys, err := f.ctx.KeysFromSeed(seed, f.net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	cp := f.ctx.cp
	// pk0 + pk1·s = e, every coefficient within the bound.
	rq := cp.RingQP()
	e := rq.NewPoly()
	rq.MulCoeffsMontgomery(keys.pk.Value[1], sk.sk.Value, e)
	rq.Add(e, keys.pk.Value[0], e)
	rq.IMForm(e, e)
	rq.INTT(e, e)
	q := cp.Q()[0]
	var sum float64
	for _, c := range e.Q.Coeffs[0] {
		v := int64(c)
		if c > q/2 {
			v = -int64(q - c)
		}
		if v < -19 || v > 19 {
			t.Fatalf("public-key error coefficient %d outside ±19", v)
		}
		sum += float64(v * v)
	}
	if sd := math.Sqrt(sum / float64(len(e.Q.Coeffs[0]))); math.Abs(sd-3.2) > 0.15 {
		t.Fatalf("public-key error standard deviation %.3f, want 3.2", sd)
	}
	// The secret is uniform ternary.
	s := rq.NewPoly()
	rq.IMForm(sk.sk.Value, s)
	rq.INTT(s, s)
	var counts [3]int
	for _, c := range s.Q.Coeffs[0] {
		switch c {
		case 0:
			counts[1]++
		case 1:
			counts[2]++
		case q - 1:
			counts[0]++
		default:
			t.Fatalf("secret coefficient %d is not ternary", c)
		}
	}
	n := float64(len(s.Q.Coeffs[0]))
	for i, k := range counts {
		if math.Abs(float64(k)/n-1.0/3) > 0.03 {
			t.Fatalf("secret value %d has frequency %.3f", i-1, float64(k)/n)
		}
	}
}

func TestCDTSamplerMatchesTheGaussian(t *testing.T) {
	tab, err := cdtFor(ring.DiscreteGaussian{Sigma: 3.2, Bound: 19.2})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(SessionSeed{7}.subseed("test", 0))
	const n = 200000
	var sum, sq float64
	lo, hi := int64(0), int64(0)
	for i := 0; i < n; i++ {
		x := tab.sample(s)
		sum += float64(x)
		sq += float64(x * x)
		lo, hi = min(lo, x), max(hi, x)
	}
	mean, sd := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.05 || math.Abs(sd-3.2) > 0.03 || lo < -19 || hi > 19 {
		t.Fatalf("mean %.3f, sd %.3f, range [%d, %d]", mean, sd, lo, hi)
	}
	if _, err := cdtFor(ring.DiscreteGaussian{Sigma: 0, Bound: 19}); err == nil {
		t.Fatal("σ = 0 accepted")
	}
}

// DecryptFixed agrees with Lattigo's float64 decoder within its stated
// bound, on a fresh encryption (level 1) and on an evaluation result
// (level 0), and its bound is far below what a dispute compares.
func TestDecryptFixedMatchesLattigo(t *testing.T) {
	f := getFix(t)
	_, imgs := testImages(t, 4)
	ct, err := f.sk.Encrypt(f.net.Layout(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.net.Evaluate(context.Background(), ct, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ct   *Ciphertext
		frac uint
		// the largest bound accepted, in slot units
		bound float64
	}{{"fresh input", ct, 40, 1e-9}, {"evaluation result", out, 30, 1e-6}} {
		fx, err := f.sk.DecryptFixed(tc.ct, tc.frac)
		if err != nil {
			t.Fatal(err)
		}
		pt := rlwe.NewDecryptor(f.ctx.cp, f.sk.sk).DecryptNew(tc.ct.ct)
		want := make([]float64, f.ctx.lit.Slots())
		if err := ckks.NewEncoder(f.ctx.cp).Decode(pt, want); err != nil {
			t.Fatal(err)
		}
		bound := math.Ldexp(float64(fx.Bound), -int(tc.frac))
		worst := 0.0
		for j, v := range fx.Values {
			worst = math.Max(worst, math.Abs(math.Ldexp(float64(v), -int(tc.frac))-want[j]))
		}
		t.Logf("%s: largest |fixed - float64| %.3g, bound %.3g", tc.name, worst, bound)
		if worst > bound+1e-9 || bound > tc.bound {
			t.Fatalf("%s: largest difference %.3g, bound %.3g (at most %.3g)", tc.name, worst, bound, tc.bound)
		}
	}
	// Pixels decode to p/256 within far less than half a grey level.
	fx, _ := f.sk.DecryptFixed(ct, 40)
	lay := f.net.Layout()
	worst := 0.0
	for b, img := range imgs {
		for p, px := range img {
			v := math.Ldexp(float64(fx.Values[b*lay.BlockSize+lay.InputOffset+p]), -40)
			worst = math.Max(worst, math.Abs(v-float64(px)/256))
		}
	}
	if worst > 1e-5 {
		t.Fatalf("a pixel decodes %.3g away from its value", worst)
	}
	t.Logf("largest pixel error %.3g (2^%.1f)", worst, math.Log2(worst))
}

// Coefficients too large for the fixed-point decoder are an error, not a
// wrong answer.
func TestDecryptFixedRefusesHugeCoefficients(t *testing.T) {
	f := getFix(t)
	ct, _ := f.sk.Encrypt(f.net.Layout(), nil)
	// Add a huge constant to c0: the decryption's coefficients become large.
	rq := f.ctx.cp.RingQ().AtLevel(ct.ct.Level())
	rq.INTT(ct.ct.Value[0], ct.ct.Value[0])
	ct.ct.Value[0].Coeffs[0][0] = f.ctx.cp.Q()[0] / 3
	ct.ct.Value[0].Coeffs[1][0] = f.ctx.cp.Q()[1] / 3
	rq.NTT(ct.ct.Value[0], ct.ct.Value[0])
	if _, err := f.sk.DecryptFixed(ct, 40); err == nil {
		t.Fatal("a decryption with a coefficient near Q/3 decoded")
	}
}
