package he

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/multiparty"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/ring/ringqp"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// Wire formats of the multiparty objects. Every one starts with a 4-byte
// magic and the 8-byte parameter tag (the first bytes of SHA-256 of
// [AggregationContext.Fingerprint]); integers are little-endian and every
// polynomial is packed residue by residue with bitlen(q) bits per
// coefficient, each checked below its modulus on decoding.
//
//	VAC1 vector ciphertext: key digest (32), summands u16, pieces u16,
//	     level u8, scale f64, then per piece c0 and c1
//	VKS1 public-key share:  CRS digest (32), point u64, share (over Q)
//	VCK1 collective key:    CRS seed (32), n u16, n points u64, pk0 (over Q)
//	VTS1 threshold share:   dealer u64, recipient u64, threshold u16, share
//	VDS1 decryption share:  key digest, ciphertext digest, point u64,
//	     t u16, t points u64, pieces u16, level u8, one polynomial per piece
//	VPT1 party secret:      point u64, threshold u16, n u16, n points,
//	     secret key, has-share u8, threshold share
const (
	vacMagic = "VAC1"
	vksMagic = "VKS1"
	vckMagic = "VCK1"
	vtsMagic = "VTS1"
	vdsMagic = "VDS1"
	vptMagic = "VPT1"
	// MaxPieces bounds the ciphertexts of one vector (256·8192 values).
	MaxPieces = 256
	// MaxParties bounds the key holders.
	MaxParties = 256
)

// ErrMultiparty is wrapped by every decoding error of a multiparty object.
var ErrMultiparty = errors.New("invalid multiparty encoding")

func (c *AggregationContext) header(magic string) []byte {
	return append([]byte(magic), c.tag[:]...)
}

// reader consumes a byte slice with bounds checks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errTruncated
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() int {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.LittleEndian.Uint16(b))
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *reader) d32() (d [32]byte) {
	copy(d[:], r.take(32))
	return d
}

func (c *AggregationContext) open(data []byte, magic string) (*reader, error) {
	if len(data) < 12 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMultiparty, len(data))
	}
	if !bytes.Equal(data[:4], []byte(magic)) {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrMultiparty, data[:4], magic)
	}
	if !bytes.Equal(data[4:12], c.tag[:]) {
		return nil, fmt.Errorf("%w: made for other parameters (tag %x, want %x)", ErrMultiparty, data[4:12], c.tag)
	}
	return &reader{b: data[12:]}, nil
}

func (r *reader) done(what string) error {
	if r.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMultiparty, what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrMultiparty, what, len(r.b))
	}
	return nil
}

// appendPoly packs the residues of p (levels 0..level of moduli). Lattigo
// leaves some results lazily reduced (in [0, 2q)), so every coefficient is
// reduced first: the encoding is canonical, and its digest names the value.
func appendPoly(buf []byte, p ring.Poly, moduli []uint64) []byte {
	var tmp []uint64
	for i := 0; i <= p.Level(); i++ {
		q, coeffs := moduli[i], p.Coeffs[i]
		if slices.ContainsFunc(coeffs, func(c uint64) bool { return c >= q }) {
			tmp = append(tmp[:0], coeffs...)
			for k, c := range tmp {
				tmp[k] = c % q
			}
			coeffs = tmp
		}
		buf = appendPacked(buf, coeffs, bitLen(q))
	}
	return buf
}

func (r *reader) poly(p ring.Poly, moduli []uint64) {
	if r.err != nil {
		return
	}
	for i := 0; i <= p.Level(); i++ {
		rest, err := readPacked(r.b, p.Coeffs[i], bitLen(moduli[i]), moduli[i])
		if err != nil {
			r.err = err
			return
		}
		r.b = rest
	}
}

func (c *AggregationContext) appendQP(buf []byte, p ringqp.Poly) []byte {
	buf = appendPoly(buf, p.Q, c.cp.Q())
	if p.P.Level() >= 0 {
		buf = appendPoly(buf, p.P, c.cp.P())
	}
	return buf
}

func (c *AggregationContext) readQP(r *reader, p ringqp.Poly) {
	r.poly(p.Q, c.cp.Q())
	if p.P.Level() >= 0 {
		r.poly(p.P, c.cp.P())
	}
}

func appendPoints(buf []byte, points []uint64) []byte {
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(points)))
	for _, p := range points {
		buf = binary.LittleEndian.AppendUint64(buf, p)
	}
	return buf
}

// points reads a sorted list of distinct non-zero points, 1..MaxParties
// long (0.. with allowEmpty).
func (r *reader) points(allowEmpty ...bool) ([]uint64, error) {
	n := r.u16()
	if r.err != nil {
		return nil, r.err
	}
	if n == 0 && len(allowEmpty) > 0 && allowEmpty[0] {
		return nil, nil
	}
	if n < 1 || n > MaxParties {
		return nil, fmt.Errorf("%d parties, want 1..%d", n, MaxParties)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = r.u64()
	}
	if r.err != nil {
		return nil, r.err
	}
	if !slices.IsSorted(out) {
		return nil, errors.New("party points not sorted")
	}
	if err := checkPoints(out); err != nil {
		return nil, err
	}
	return out, nil
}

// ---- vector ciphertexts ----

func (v *VectorCiphertext) encode() {
	v.once.Do(func() {
		c := v.ctx
		buf := c.header(vacMagic)
		buf = append(buf, v.keyDigest[:]...)
		buf = binary.LittleEndian.AppendUint16(buf, uint16(v.summands))
		buf = binary.LittleEndian.AppendUint16(buf, uint16(len(v.cts)))
		buf = append(buf, byte(c.maxLevel()))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(c.scale().Float64()))
		for _, ct := range v.cts {
			buf = appendPoly(buf, ct.Value[0], c.cp.Q())
			buf = appendPoly(buf, ct.Value[1], c.cp.Q())
		}
		v.wire = buf
		v.digest = sha256.Sum256(buf)
	})
}

// UnmarshalVectorCiphertext decodes a vector ciphertext and checks it
// strictly: these parameters, this key, exactly pieces ciphertexts, the
// fresh level and the parameters' scale, 1..MaxSummands summands, every
// coefficient below its modulus, no trailing bytes.
func (k *CollectiveKey) UnmarshalVectorCiphertext(data []byte, pieces int) (*VectorCiphertext, error) {
	c := k.ctx
	r, err := c.open(data, vacMagic)
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: vector ciphertext: %s", ErrMultiparty, fmt.Sprintf(format, a...))
	}
	kd := r.d32()
	summands, n, level := r.u16(), r.u16(), r.u8()
	scale := math.Float64frombits(r.u64())
	switch {
	case r.err != nil:
		return nil, bad("truncated header")
	case kd != k.digest:
		return nil, bad("encrypted under another key (%x, want %x)", kd[:8], k.digest[:8])
	case n != pieces:
		return nil, bad("%d pieces, want %d", n, pieces)
	case summands < 1 || summands > c.p.MaxSummands:
		return nil, bad("%d summands, want 1..%d", summands, c.p.MaxSummands)
	case level != c.maxLevel():
		return nil, bad("level %d, want %d", level, c.maxLevel())
	case scale != c.scale().Float64():
		return nil, bad("scale 2^%.4g, want 2^%d", math.Log2(scale), c.p.LogScale)
	}
	want := n * 2 * packedLen(c.Slots(), bitLen(c.cp.Q()[0])) * (level + 1)
	if len(r.b) != want {
		return nil, bad("%d bytes of coefficients, want %d", len(r.b), want)
	}
	v := &VectorCiphertext{ctx: c, keyDigest: kd, summands: summands, cts: make([]*rlwe.Ciphertext, n)}
	for j := range v.cts {
		ct := ckks.NewCiphertext(c.cp, 1, level)
		r.poly(ct.Value[0], c.cp.Q())
		r.poly(ct.Value[1], c.cp.Q())
		v.cts[j] = ct
	}
	if err := r.done("vector ciphertext"); err != nil {
		return nil, err
	}
	return v, nil
}

// ---- public-key shares and the collective key ----

// MarshalBinary encodes the share.
func (s *PublicKeyShare) MarshalBinary() ([]byte, error) {
	buf := s.ctx.header(vksMagic)
	buf = append(buf, s.crsDigest[:]...)
	buf = binary.LittleEndian.AppendUint64(buf, s.Point)
	return s.ctx.appendQP(buf, s.share.Value), nil
}

// UnmarshalPublicKeyShare decodes a CKG share.
func (c *AggregationContext) UnmarshalPublicKeyShare(data []byte) (*PublicKeyShare, error) {
	r, err := c.open(data, vksMagic)
	if err != nil {
		return nil, err
	}
	s := &PublicKeyShare{ctx: c, crsDigest: r.d32(), Point: r.u64()}
	if r.err == nil && s.Point == 0 {
		return nil, fmt.Errorf("%w: public-key share: point 0", ErrMultiparty)
	}
	s.share = multiparty.NewPublicKeyGenProtocol(c.cp).AllocateShare()
	c.readQP(r, s.share.Value)
	if err := r.done("public-key share"); err != nil {
		return nil, err
	}
	return s, nil
}

func (k *CollectiveKey) marshal() []byte {
	buf := k.ctx.header(vckMagic)
	buf = append(buf, k.crs...)
	buf = appendPoints(buf, k.points)
	return k.ctx.appendQP(buf, k.pk.Value[0])
}

// MarshalBinary encodes the key (its uniform half is regenerated from the
// common reference string).
func (k *CollectiveKey) MarshalBinary() ([]byte, error) { return slices.Clone(k.wire), nil }

// UnmarshalCollectiveKey decodes a collective public key.
func (c *AggregationContext) UnmarshalCollectiveKey(data []byte) (*CollectiveKey, error) {
	r, err := c.open(data, vckMagic)
	if err != nil {
		return nil, err
	}
	crs := slices.Clone(r.take(CRSBytes))
	points, err := r.points()
	if err != nil {
		return nil, fmt.Errorf("%w: collective key: %v", ErrMultiparty, err)
	}
	pk := rlwe.NewPublicKey(c.cp)
	c.readQP(r, pk.Value[0])
	if err := r.done("collective key"); err != nil {
		return nil, err
	}
	prng, err := newCRS(crs)
	if err != nil {
		return nil, fmt.Errorf("%w: collective key: %v", ErrMultiparty, err)
	}
	ckg := multiparty.NewPublicKeyGenProtocol(c.cp)
	crp := ckg.SampleCRP(prng)
	pk.Value[1].Copy(crp.Value)
	return newCollectiveKey(c, pk, crs, points), nil
}

// ---- threshold shares ----

// MarshalBinary encodes the (secret) share.
func (s *ThresholdShare) MarshalBinary() ([]byte, error) {
	buf := s.ctx.header(vtsMagic)
	buf = binary.LittleEndian.AppendUint64(buf, s.Dealer)
	buf = binary.LittleEndian.AppendUint64(buf, s.Recipient)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(s.Threshold))
	return s.ctx.appendQP(buf, s.share.Poly), nil
}

// UnmarshalThresholdShare decodes a threshold share.
func (c *AggregationContext) UnmarshalThresholdShare(data []byte) (*ThresholdShare, error) {
	r, err := c.open(data, vtsMagic)
	if err != nil {
		return nil, err
	}
	s := &ThresholdShare{ctx: c, Dealer: r.u64(), Recipient: r.u64(), Threshold: r.u16()}
	if r.err == nil && (s.Dealer == 0 || s.Recipient == 0 || s.Threshold < 1 || s.Threshold > MaxParties) {
		return nil, fmt.Errorf("%w: threshold share: dealer %d, recipient %d, threshold %d", ErrMultiparty, s.Dealer, s.Recipient, s.Threshold)
	}
	s.share = multiparty.NewThresholdizer(c.cp).AllocateThresholdSecretShare()
	c.readQP(r, s.share.Poly)
	if err := r.done("threshold share"); err != nil {
		return nil, err
	}
	return s, nil
}

// ---- decryption shares ----

// MarshalBinary encodes the share.
func (s *DecryptionShare) MarshalBinary() ([]byte, error) {
	c := s.ctx
	buf := c.header(vdsMagic)
	buf = append(buf, s.KeyDigest[:]...)
	buf = append(buf, s.CiphertextDigest[:]...)
	buf = binary.LittleEndian.AppendUint64(buf, s.Point)
	buf = appendPoints(buf, s.Subset)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(s.shares)))
	buf = append(buf, byte(c.maxLevel()))
	for _, sh := range s.shares {
		buf = appendPoly(buf, sh.Value, c.cp.Q())
	}
	return buf, nil
}

// WireSize returns the length of the share's encoding.
func (s *DecryptionShare) WireSize() int {
	b, _ := s.MarshalBinary()
	return len(b)
}

// UnmarshalDecryptionShare decodes a decryption share: the subset sorted,
// distinct and containing the sender, 1..MaxPieces pieces at the fresh
// level, every coefficient below its modulus. Whether it is for the right
// key, ciphertext and subset is checked by [CollectiveKey.Decrypt].
func (c *AggregationContext) UnmarshalDecryptionShare(data []byte) (*DecryptionShare, error) {
	r, err := c.open(data, vdsMagic)
	if err != nil {
		return nil, err
	}
	s := &DecryptionShare{ctx: c, KeyDigest: r.d32(), CiphertextDigest: r.d32(), Point: r.u64()}
	subset, err := r.points()
	if err != nil {
		return nil, fmt.Errorf("%w: decryption share: %v", ErrMultiparty, err)
	}
	if !slices.Contains(subset, s.Point) {
		return nil, fmt.Errorf("%w: decryption share: sender %d not in its subset %v", ErrMultiparty, s.Point, subset)
	}
	s.Subset = subset
	n, level := r.u16(), r.u8()
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("%w: decryption share: truncated header", ErrMultiparty)
	case n < 1 || n > MaxPieces:
		return nil, fmt.Errorf("%w: decryption share: %d pieces, want 1..%d", ErrMultiparty, n, MaxPieces)
	case level != c.maxLevel():
		return nil, fmt.Errorf("%w: decryption share: level %d, want %d", ErrMultiparty, level, c.maxLevel())
	}
	if want := n * packedLen(c.Slots(), bitLen(c.cp.Q()[0])) * (level + 1); len(r.b) != want {
		return nil, fmt.Errorf("%w: decryption share: %d bytes of coefficients, want %d", ErrMultiparty, len(r.b), want)
	}
	s.shares = make([]multiparty.KeySwitchShare, n)
	for j := range s.shares {
		s.shares[j] = multiparty.KeySwitchShare{Value: c.cp.RingQ().AtLevel(level).NewPoly()}
		r.poly(s.shares[j].Value, c.cp.Q())
	}
	if err := r.done("decryption share"); err != nil {
		return nil, err
	}
	return s, nil
}

// ---- party secrets ----

// MarshalBinary encodes the party's secret key and threshold share: store
// it in a file only its owner can read (0600).
func (p *Party) MarshalBinary() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.ctx
	buf := c.header(vptMagic)
	buf = binary.LittleEndian.AppendUint64(buf, p.point)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(p.threshold))
	buf = appendPoints(buf, p.points)
	buf = c.appendQP(buf, p.sk.Value)
	if p.tsk == nil {
		return append(buf, 0), nil
	}
	buf = append(buf, 1)
	return c.appendQP(buf, p.tsk.Poly), nil
}

// UnmarshalParty decodes a party secret.
func (c *AggregationContext) UnmarshalParty(data []byte) (*Party, error) {
	r, err := c.open(data, vptMagic)
	if err != nil {
		return nil, err
	}
	point, t := r.u64(), r.u16()
	points, err := r.points(true)
	if err != nil {
		return nil, fmt.Errorf("%w: party: %v", ErrMultiparty, err)
	}
	if r.err == nil && (point == 0 || (t != 0) != (len(points) != 0) || t > len(points)) {
		return nil, fmt.Errorf("%w: party: point %d, threshold %d of %d", ErrMultiparty, point, t, len(points))
	}
	p := &Party{ctx: c, point: point, sk: rlwe.NewSecretKey(c.cp)}
	c.readQP(r, p.sk.Value)
	has := r.u8()
	var tsk *multiparty.ShamirSecretShare
	if has == 1 {
		s := multiparty.NewThresholdizer(c.cp).AllocateThresholdSecretShare()
		c.readQP(r, s.Poly)
		tsk = &s
	} else if has != 0 {
		return nil, fmt.Errorf("%w: party: bad share flag %d", ErrMultiparty, has)
	}
	if err := r.done("party"); err != nil {
		return nil, err
	}
	if (tsk != nil) != (t != 0) {
		return nil, fmt.Errorf("%w: party: threshold %d with share present = %v", ErrMultiparty, t, tsk != nil)
	}
	if tsk != nil {
		if !slices.Contains(points, point) {
			return nil, fmt.Errorf("%w: party: own point %d not among %v", ErrMultiparty, point, points)
		}
		p.setThreshold(t, points, tsk)
	}
	return p, nil
}
