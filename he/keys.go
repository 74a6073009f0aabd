package he

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring/ringqp"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"
)

// SecretKey is a client's CKKS secret key. It never leaves the client: keep
// it in a 0600 file (see MarshalBinary).
type SecretKey struct {
	params *Parameters
	sk     *rlwe.SecretKey
	// seed, when set, derived sk and derives the evaluation keys
	// (KeysFromSeed).
	seed *SessionSeed
}

// GenSecretKey draws a fresh session seed and derives a uniform ternary
// secret key from it (see [Parameters.KeysFromSeed]).
func (c *Parameters) GenSecretKey() *SecretKey {
	seed, err := NewSessionSeed()
	if err != nil {
		// The system's secure source does not fail on supported platforms.
		panic(err)
	}
	sk, err := c.SecretKeyFromSeed(seed)
	if err != nil {
		panic(err) // the default distributions are supported; see keyGen
	}
	return sk
}

// MaxGaloisKeys bounds the rotation keys a client may upload (the default
// network needs 26).
const MaxGaloisKeys = 64

// EvaluationKeys are the public keys a server needs to evaluate a network
// on a client's ciphertexts: the public key (for re-randomising results),
// the relinearisation key and the rotation (Galois) keys. On the wire each
// key carries a 32-byte seed instead of its uniform half.
type EvaluationKeys struct {
	params *Parameters
	pk     *rlwe.PublicKey
	// pkSeed generated the uniform half of pk.
	pkSeed []byte
	rlk    *rlwe.RelinearizationKey
	gks    []*rlwe.GaloisKey
	set    *rlwe.MemEvaluationKeySet
	// evaluators recycles evaluators bound to these keys: binding computes
	// an automorphism index per rotation key and allocates buffers (several
	// MB), which is worth doing once per session, not once per request.
	evaluators sync.Pool
}

// GaloisElements lists the rotation keys held.
func (k *EvaluationKeys) GaloisElements() []uint64 {
	out := make([]uint64, len(k.gks))
	for i, g := range k.gks {
		out[i] = g.GaloisElement
	}
	return out
}

// MemoryBytes estimates the memory the expanded keys hold on a server.
func (k *EvaluationKeys) MemoryBytes() int {
	n := k.pk.BinarySize() + k.rlk.BinarySize()
	for _, g := range k.gks {
		n += g.BinarySize()
	}
	return n
}

// GenEvaluationKeys generates the public, relinearisation and the listed
// rotation keys, in compressed (seeded) form: derived from the key's session
// seed (deterministically, see [Parameters.KeysFromSeed]) when it has one.
func (s *SecretKey) GenEvaluationKeys(galEls []uint64) (*EvaluationKeys, error) {
	if s.seed != nil {
		g, err := s.params.keyGen(*s.seed)
		if err != nil {
			return nil, err
		}
		return g.evaluationKeys(s, galEls)
	}
	if len(galEls) > MaxGaloisKeys {
		return nil, fmt.Errorf("generate keys: %d rotation keys requested, more than %d", len(galEls), MaxGaloisKeys)
	}
	galEls = slices.Clone(galEls)
	slices.Sort(galEls)
	galEls = slices.Compact(galEls)
	cp := s.params.cp
	kgen := rlwe.NewKeyGenerator(cp)
	compressed := rlwe.EvaluationKeyParameters{Compressed: true}
	k := &EvaluationKeys{params: s.params}
	seed, err := newSeed()
	if err != nil {
		return nil, err
	}
	if k.pk, err = genSeededPublicKey(cp, s.sk, seed); err != nil {
		return nil, err
	}
	k.pkSeed = seed
	k.rlk = kgen.GenRelinearizationKeyNew(s.sk, compressed)
	k.gks = kgen.GenGaloisKeysNew(galEls, s.sk, compressed)
	return k, nil
}

// genSeededPublicKey makes pk = (-a·s + e, a) with a drawn from a PRNG keyed
// by seed, exactly as rlwe.KeyGenerator.GenPublicKey does with its own PRNG.
func genSeededPublicKey(cp ckks.Parameters, sk *rlwe.SecretKey, seed []byte) (*rlwe.PublicKey, error) {
	prng, err := sampling.NewKeyedPRNG(seed)
	if err != nil {
		return nil, fmt.Errorf("public key seed: %w", err)
	}
	pk := rlwe.NewPublicKey(cp)
	enc := rlwe.NewEncryptor(cp, sk).WithPRNG(prng)
	if err := enc.EncryptZero(rlwe.Element[ringqp.Poly]{
		MetaData: &rlwe.MetaData{CiphertextMetaData: rlwe.CiphertextMetaData{IsNTT: true, IsMontgomery: true}},
		Value:    []ringqp.Poly(pk.Value),
	}); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return pk, nil
}

// Wire format of an evaluation-key bundle:
//
//	magic "VEK1", uint16 length + parameter fingerprint,
//	public key: seed, then its first polynomial over QP,
//	relinearisation key: seed, then the first polynomial of each gadget row,
//	uint32 count, then for each rotation key: uint64 Galois element, seed,
//	gadget rows as above.
//
// QP polynomials are written residue by residue with bitlen(q) bits per
// coefficient.
const ekMagic = "VEK1"

// MarshalBinary encodes the bundle (compressed keys only).
func (k *EvaluationKeys) MarshalBinary() ([]byte, error) {
	if !k.rlk.IsCompressed() {
		return nil, errors.New("encode keys: only compressed keys can be sent")
	}
	fp := k.params.Fingerprint()
	buf := []byte(ekMagic)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(fp)))
	buf = append(buf, fp...)
	buf = append(buf, k.pkSeed...)
	buf = k.params.appendQP(buf, k.pk.Value[0])
	buf = k.params.appendGadget(buf, &k.rlk.EvaluationKey)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(k.gks)))
	for _, g := range k.gks {
		buf = binary.LittleEndian.AppendUint64(buf, g.GaloisElement)
		buf = k.params.appendGadget(buf, &g.EvaluationKey)
	}
	return buf, nil
}

func (c *Parameters) appendQP(buf []byte, p ringqp.Poly) []byte {
	for i, q := range c.ModuliQ()[:p.Q.Level()+1] {
		buf = appendPacked(buf, p.Q.Coeffs[i], bitLen(q))
	}
	for i, q := range c.ModuliP()[:p.P.Level()+1] {
		buf = appendPacked(buf, p.P.Coeffs[i], bitLen(q))
	}
	return buf
}

func (c *Parameters) readQP(src []byte, p ringqp.Poly) ([]byte, error) {
	var err error
	for i, q := range c.ModuliQ()[:p.Q.Level()+1] {
		if src, err = readPacked(src, p.Q.Coeffs[i], bitLen(q), q); err != nil {
			return nil, err
		}
	}
	for i, q := range c.ModuliP()[:p.P.Level()+1] {
		if src, err = readPacked(src, p.P.Coeffs[i], bitLen(q), q); err != nil {
			return nil, err
		}
	}
	return src, nil
}

func (c *Parameters) appendGadget(buf []byte, evk *rlwe.EvaluationKey) []byte {
	buf = append(buf, evk.Seed...)
	for i := range evk.Value {
		for j := range evk.Value[i] {
			buf = c.appendQP(buf, evk.Value[i][j][0])
		}
	}
	return buf
}

func (c *Parameters) readGadget(src []byte, evk *rlwe.EvaluationKey) ([]byte, error) {
	if len(src) < seedLen {
		return nil, errTruncated
	}
	evk.Seed = append([]byte(nil), src[:seedLen]...)
	src = src[seedLen:]
	var err error
	for i := range evk.Value {
		for j := range evk.Value[i] {
			if src, err = c.readQP(src, evk.Value[i][j][0]); err != nil {
				return nil, err
			}
		}
	}
	// Regenerate the uniform halves from the seed.
	if err := evk.Expand(c.cp, nil); err != nil {
		return nil, err
	}
	return src, nil
}

// ErrKeys is wrapped by every evaluation-key decoding error.
var ErrKeys = errors.New("invalid evaluation keys")

// UnmarshalEvaluationKeys decodes a key bundle, checks that it was made for
// these parameters and that it holds exactly the required rotation keys.
func (c *Parameters) UnmarshalEvaluationKeys(data []byte, required []uint64) (*EvaluationKeys, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrKeys, fmt.Sprintf(format, a...))
	}
	if len(data) < 6 || !bytes.Equal(data[:4], []byte(ekMagic)) {
		return nil, bad("not a key bundle")
	}
	fl := int(binary.LittleEndian.Uint16(data[4:6]))
	if len(data) < 6+fl {
		return nil, bad("truncated header")
	}
	if fp := string(data[6 : 6+fl]); fp != c.Fingerprint() {
		return nil, bad("made for other parameters (%q, want %q)", fp, c.Fingerprint())
	}
	src := data[6+fl:]
	k := &EvaluationKeys{params: c}
	if len(src) < seedLen {
		return nil, bad("truncated public key")
	}
	k.pkSeed = append([]byte(nil), src[:seedLen]...)
	src = src[seedLen:]
	k.pk = rlwe.NewPublicKey(c.cp)
	var err error
	if src, err = c.readQP(src, k.pk.Value[0]); err != nil {
		return nil, bad("public key: %v", err)
	}
	prng, err := sampling.NewKeyedPRNG(k.pkSeed)
	if err != nil {
		return nil, bad("public key seed: %v", err)
	}
	ringqp.NewUniformSampler(prng, *c.cp.RingQP()).Read(k.pk.Value[1])
	compressed := rlwe.EvaluationKeyParameters{Compressed: true}
	k.rlk = rlwe.NewRelinearizationKey(c.cp, compressed)
	if src, err = c.readGadget(src, &k.rlk.EvaluationKey); err != nil {
		return nil, bad("relinearisation key: %v", err)
	}
	if len(src) < 4 {
		return nil, bad("truncated rotation-key count")
	}
	n := int(binary.LittleEndian.Uint32(src))
	src = src[4:]
	if n > MaxGaloisKeys {
		return nil, bad("%d rotation keys, more than %d", n, MaxGaloisKeys)
	}
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		if len(src) < 8 {
			return nil, bad("rotation key %d: truncated", i)
		}
		g := rlwe.NewGaloisKey(c.cp, compressed)
		g.GaloisElement = binary.LittleEndian.Uint64(src)
		src = src[8:]
		if seen[g.GaloisElement] {
			return nil, bad("rotation key %d: duplicate Galois element %d", i, g.GaloisElement)
		}
		if !slices.Contains(required, g.GaloisElement) {
			return nil, bad("rotation key %d: Galois element %d is not needed by this network", i, g.GaloisElement)
		}
		seen[g.GaloisElement] = true
		if src, err = c.readGadget(src, &g.EvaluationKey); err != nil {
			return nil, bad("rotation key %d (Galois element %d): %v", i, g.GaloisElement, err)
		}
		k.gks = append(k.gks, g)
	}
	if len(src) != 0 {
		return nil, bad("%d trailing bytes", len(src))
	}
	for _, g := range required {
		if !seen[g] {
			return nil, bad("missing the rotation key for Galois element %d", g)
		}
	}
	k.set = rlwe.NewMemEvaluationKeySet(k.rlk, k.gks...)
	return k, nil
}

// SecretKey wire format: magic "VSK1", fingerprint as in key bundles, then
// the key polynomial over QP.
const skMagic = "VSK1"

// MarshalBinary encodes the secret key. Store it with mode 0600.
func (s *SecretKey) MarshalBinary() ([]byte, error) {
	fp := s.params.Fingerprint()
	buf := []byte(skMagic)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(fp)))
	buf = append(buf, fp...)
	return s.params.appendQP(buf, s.sk.Value), nil
}

// UnmarshalSecretKey decodes a secret key made for these parameters.
func (c *Parameters) UnmarshalSecretKey(data []byte) (*SecretKey, error) {
	if len(data) < 6 || !bytes.Equal(data[:4], []byte(skMagic)) {
		return nil, errors.New("secret key: bad format")
	}
	fl := int(binary.LittleEndian.Uint16(data[4:6]))
	if len(data) < 6+fl {
		return nil, errors.New("secret key: truncated")
	}
	if fp := string(data[6 : 6+fl]); fp != c.Fingerprint() {
		return nil, fmt.Errorf("secret key: made for other parameters (%q)", fp)
	}
	sk := rlwe.NewSecretKey(c.cp)
	rest, err := c.readQP(data[6+fl:], sk.Value)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("secret key: trailing bytes")
	}
	return &SecretKey{params: c, sk: sk}, nil
}

// getEvaluators returns n CKKS evaluators bound to the client's keys, safe
// to use concurrently with each other; putEvaluators gives them back.
func (k *EvaluationKeys) getEvaluators(n int) []*ckks.Evaluator {
	if evs, ok := k.evaluators.Get().(*[]*ckks.Evaluator); ok && len(*evs) == n {
		return *evs
	}
	evs := make([]*ckks.Evaluator, n)
	evs[0] = ckks.NewEvaluator(k.params.cp, k.set)
	for w := 1; w < n; w++ {
		evs[w] = evs[0].ShallowCopy()
	}
	return evs
}

func (k *EvaluationKeys) putEvaluators(evs []*ckks.Evaluator) { k.evaluators.Put(&evs) }
