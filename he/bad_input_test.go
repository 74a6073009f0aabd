package he

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// fixture is shared by the bad-input tests: compiling the network and making
// keys takes about half a second.
type fixture struct {
	ctx  *Parameters
	net  *Network
	sk   *SecretKey
	keys *EvaluationKeys
	wire []byte // the key bundle
	ct   []byte // a valid input ciphertext
}

var fix = sync.OnceValues(func() (*fixture, error) {
	f, err := model.Default()
	if err != nil {
		return nil, err
	}
	c, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		return nil, err
	}
	net, err := c.Compile(f.Model, DefaultEvaluationSettings)
	if err != nil {
		return nil, err
	}
	sk := c.GenSecretKey()
	k, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		return nil, err
	}
	wire, err := k.MarshalBinary()
	if err != nil {
		return nil, err
	}
	keys, err := c.UnmarshalEvaluationKeys(wire, net.GaloisElements())
	if err != nil {
		return nil, err
	}
	ct, err := sk.Encrypt(net.Layout(), [][]uint8{make([]uint8, pixels.Count)})
	if err != nil {
		return nil, err
	}
	ctw, err := ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &fixture{c, net, sk, keys, wire, ctw}, nil
})

func getFix(t testing.TB) *fixture {
	t.Helper()
	f, err := fix()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDefaultParametersAre128Bit(t *testing.T) {
	bitsSec, err := DefaultParametersLiteral.SecurityBits()
	if err != nil {
		t.Fatal(err)
	}
	logQP, _ := DefaultParametersLiteral.LogQP()
	if bitsSec != 128 || logQP > 218 {
		t.Fatalf("security %d bits, log2(QP) = %.1f", bitsSec, logQP)
	}
	// The same moduli on a ring of half the degree are not 128-bit secure.
	small := DefaultParametersLiteral
	small.LogN = 12
	small.BlockSize = 1024
	if _, err := small.SecurityBits(); err == nil || !strings.Contains(err.Error(), "exceeds 109") {
		t.Fatalf("LogN=12 with log2(QP)≈180 accepted as 128-bit: %v", err)
	}
}

func TestUnmarshalCiphertextRejects(t *testing.T) {
	f := getFix(t)
	random := make([]byte, len(f.ct))
	_, _ = rand.Read(random)
	wrongMagic := bytes.Clone(f.ct)
	copy(wrongMagic, "XXXX")
	wrongLevel := bytes.Clone(f.ct)
	wrongLevel[5] = 7
	badScale := bytes.Clone(f.ct)
	copy(badScale[6:14], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}) // NaN
	bigCoeff := bytes.Clone(f.ct)
	for i := len(bigCoeff) - 8; i < len(bigCoeff); i++ {
		bigCoeff[i] = 0xff // the last coefficient is above its modulus
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than"},
		{"truncated", f.ct[:len(f.ct)/2], "bytes of coefficients"},
		{"random bytes", random, "bad magic"},
		{"wrong magic", wrongMagic, "bad magic"},
		{"wrong level", wrongLevel, "level 7"},
		{"NaN scale", badScale, "scale"},
		{"coefficient above modulus", bigCoeff, "not below the modulus"},
		{"trailing byte", append(bytes.Clone(f.ct), 0), "bytes of coefficients"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.ctx.UnmarshalCiphertext(c.data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrCiphertext) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want ErrCiphertext mentioning %q", err, c.want)
			}
		})
	}
}

// A ciphertext at another parameter set (other primes) does not decode at
// these parameters.
func TestCiphertextAtOtherParameters(t *testing.T) {
	f := getFix(t)
	lit, settings := otherParameters()
	other, err := NewParameters(lit)
	if err != nil {
		t.Fatal(err)
	}
	net, err := other.Compile(mustDefault(t), settings)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := other.GenSecretKey().Encrypt(net.Layout(), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := ct.MarshalBinary()
	if _, err := f.ctx.UnmarshalCiphertext(w); err == nil {
		t.Fatal("a ciphertext for 55-bit primes decoded at 60-bit primes")
	}
}

// otherParameters differ from the defaults in their primes (and the
// settings leave the same headroom below the smaller modulus).
func otherParameters() (ParametersLiteral, EvaluationSettings) {
	p := DefaultParametersLiteral
	p.LogQ = []int{58, 58}
	s := DefaultEvaluationSettings
	s.LogOutputWeightScale = 14
	return p, s
}

func mustDefault(t testing.TB) *model.Model {
	mf, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	return mf.Model
}

func TestEvaluateRejectsWrongLevelAndScale(t *testing.T) {
	f := getFix(t)
	ct, err := f.ctx.UnmarshalCiphertext(f.ct)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.net.Evaluate(context.Background(), ct, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	// The output is at level 0: feeding it back is refused.
	if _, err := f.net.Evaluate(context.Background(), out, f.keys); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "level 0") {
		t.Fatalf("level-0 input: %v", err)
	}
	// A fresh ciphertext whose header claims another scale.
	w := bytes.Clone(f.ct)
	copy(w[6:14], []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x41}) // 2^32
	ct2, err := f.ctx.UnmarshalCiphertext(w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.net.Evaluate(context.Background(), ct2, f.keys); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "scale") {
		t.Fatalf("wrong scale: %v", err)
	}
}

func TestUnmarshalEvaluationKeysRejects(t *testing.T) {
	f := getFix(t)
	req := f.net.GaloisElements()
	if _, err := f.ctx.UnmarshalEvaluationKeys(f.wire, req[1:]); err == nil || !strings.Contains(err.Error(), "not needed") {
		t.Fatalf("extra key: %v", err)
	}
	// Keys made without one of the rotations the network needs.
	k, err := f.sk.GenEvaluationKeys(req[1:])
	if err != nil {
		t.Fatal(err)
	}
	w, _ := k.MarshalBinary()
	if _, err := f.ctx.UnmarshalEvaluationKeys(w, req); err == nil || !strings.Contains(err.Error(), "missing the rotation key") {
		t.Fatalf("missing key: %v", err)
	}
	// Keys for other parameters.
	lit, _ := otherParameters()
	other, err := NewParameters(lit)
	if err != nil {
		t.Fatal(err)
	}
	ko, err := other.GenSecretKey().GenEvaluationKeys(nil)
	if err != nil {
		t.Fatal(err)
	}
	wo, _ := ko.MarshalBinary()
	if _, err := f.ctx.UnmarshalEvaluationKeys(wo, req); err == nil || !strings.Contains(err.Error(), "other parameters") {
		t.Fatalf("other parameters: %v", err)
	}
	for _, cut := range []int{0, 3, 100, len(f.wire) / 2, len(f.wire) - 1} {
		if _, err := f.ctx.UnmarshalEvaluationKeys(f.wire[:cut], req); !errors.Is(err, ErrKeys) {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
}

func TestSecretKeyRoundTrip(t *testing.T) {
	f := getFix(t)
	w, err := f.sk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sk2, err := f.ctx.UnmarshalSecretKey(w)
	if err != nil {
		t.Fatal(err)
	}
	// A ciphertext encrypted by the original decrypts under the copy.
	img := make([]uint8, pixels.Count)
	for i := range img {
		img[i] = uint8(i % 251)
	}
	ct, _ := f.sk.Encrypt(f.net.Layout(), [][]uint8{img})
	out, err := f.net.Evaluate(context.Background(), ct, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.sk.Decrypt(f.net.Layout(), out)
	b, _ := sk2.Decrypt(f.net.Layout(), out)
	for r := range a[0] {
		if a[0][r] != b[0][r] {
			t.Fatalf("score %d: %g vs %g", r, a[0][r], b[0][r])
		}
	}
	if _, err := f.ctx.UnmarshalSecretKey(w[:len(w)-5]); err == nil {
		t.Fatal("truncated secret key accepted")
	}
}

func FuzzUnmarshalCiphertext(fz *testing.F) {
	f := getFix(fz)
	fz.Add(f.ct[:64])
	fz.Add([]byte("VCT1\x01\x01"))
	fz.Fuzz(func(t *testing.T, data []byte) {
		_, _ = f.ctx.UnmarshalCiphertext(data) // must not panic
	})
}

func FuzzUnmarshalEvaluationKeys(fz *testing.F) {
	f := getFix(fz)
	fz.Add(f.wire[:200])
	fz.Fuzz(func(t *testing.T, data []byte) {
		_, _ = f.ctx.UnmarshalEvaluationKeys(data, f.net.GaloisElements()) // must not panic
	})
}
