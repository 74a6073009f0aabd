package he

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/veil-project/veil/pixels"
)

func TestParametersLiteralEncodingRoundTrip(t *testing.T) {
	b, err := DefaultParametersLiteral.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// VPL1, LogN, 2 primes, 1 prime, input scale, log2(block).
	want := []byte{'V', 'P', 'L', '1', 13, 2, 60, 60, 1, 60, 31, 10}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding %v, want %v", b, want)
	}
	got, err := UnmarshalParametersLiteral(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogN != 13 || !slices.Equal(got.LogQ, []int{60, 60}) || !slices.Equal(got.LogP, []int{60}) ||
		got.LogInputScale != 31 || got.BlockSize != 1024 {
		t.Fatalf("decoded %+v", got)
	}
	// Compiling the decoded literal gives the same primes.
	a, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewParameters(got)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != c.Fingerprint() {
		t.Fatalf("fingerprints differ: %s vs %s", a.Fingerprint(), c.Fingerprint())
	}
}

// A server's literal is untrusted input to a client: every malformed or
// out-of-range encoding is refused with ErrParameters, never a panic.
func TestUnmarshalParametersLiteralRejects(t *testing.T) {
	good, _ := DefaultParametersLiteral.MarshalBinary()
	with := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":                {nil, "bad magic"},
		"wrong magic":          {append([]byte("XPL1"), good[4:]...), "bad magic"},
		"truncated":            {good[:len(good)-1], "truncated"},
		"trailing byte":        {append(bytes.Clone(good), 0), "trailing"},
		"prime count too long": {with(5, 200), "truncated"},
		"LogN 16":              {with(4, 16), "LogN = 16"},
		"no ciphertext prime":  {[]byte{'V', 'P', 'L', '1', 13, 0, 1, 60, 31, 10}, "no ciphertext prime"},
		"no key-switching":     {[]byte{'V', 'P', 'L', '1', 13, 2, 60, 60, 0, 31, 10}, "no key-switching prime"},
		"65-bit prime":         {with(6, 65), "65 bits"},
		"tiny input scale":     {with(10, 3), "too imprecise"},
		"block of 2^40":        {with(11, 40), "block size"},
		"block bigger than N":  {with(11, 14), "block size 16384"},
		"block of 512":         {with(11, 9), "block size 512"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := UnmarshalParametersLiteral(c.data)
			if !errors.Is(err, ErrParameters) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrParameters mentioning %q", err, c.want)
			}
		})
	}
}

func FuzzUnmarshalParametersLiteral(f *testing.F) {
	good, _ := DefaultParametersLiteral.MarshalBinary()
	f.Add(good)
	f.Add([]byte("VPL1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := UnmarshalParametersLiteral(data)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes: one encoding per
		// literal.
		again, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes to %v (%v), not %v", p, again, err, data)
		}
	})
}

// The settings are checked against the literal: weight scales that leave
// no headroom below Q are refused before any encoding.
func TestEvaluationSettingsValidate(t *testing.T) {
	if err := DefaultEvaluationSettings.Validate(DefaultParametersLiteral); err != nil {
		t.Fatal(err)
	}
	s := DefaultEvaluationSettings
	s.LogOutputWeightScale = 40
	if err := s.Validate(DefaultParametersLiteral); err == nil || !strings.Contains(err.Error(), "headroom") {
		t.Fatalf("no headroom accepted: %v", err)
	}
	s = DefaultEvaluationSettings
	s.LogFloodSigma = 60
	if err := s.Validate(DefaultParametersLiteral); err == nil || !strings.Contains(err.Error(), "LogFloodSigma") {
		t.Fatalf("flooding 2^60 accepted: %v", err)
	}
	p, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	s = DefaultEvaluationSettings
	s.LogBSGSRatio = -1
	if _, err := p.Compile(mustDefault(t), s); err == nil || !strings.Contains(err.Error(), "LogBSGSRatio") {
		t.Fatalf("compile with a negative BSGS ratio: %v", err)
	}
}

// A layout that a lying server announces cannot make the client write or
// read outside the slots.
func TestLayoutValidate(t *testing.T) {
	f := getFix(t)
	good := f.net.Layout()
	if err := good.Validate(DefaultParametersLiteral); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Layout){
		"more blocks than slots": func(l *Layout) { l.Blocks = 9 },
		"no block":               func(l *Layout) { l.Blocks = 0 },
		"other block size":       func(l *Layout) { l.BlockSize = 2048 },
		"pixels past the block":  func(l *Layout) { l.InputOffset = 512 },
		"negative offset":        func(l *Layout) { l.InputOffset = -1 },
		"scores past the block":  func(l *Layout) { l.Outputs = 5000 },
		"no score":               func(l *Layout) { l.Outputs = 0 },
	} {
		l := good
		mut(&l)
		if err := l.Validate(DefaultParametersLiteral); err == nil {
			t.Errorf("%s: layout %+v accepted", name, l)
		}
		if _, err := f.sk.Encrypt(l, [][]uint8{make([]uint8, pixels.Count)}); err == nil || !strings.Contains(err.Error(), "layout") {
			t.Errorf("%s: encrypt with layout %+v: %v", name, l, err)
		}
		ct, err := f.ctx.UnmarshalCiphertext(f.ct)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sk.Decrypt(l, ct); err == nil || !strings.Contains(err.Error(), "layout") {
			t.Errorf("%s: decrypt with layout %+v: %v", name, l, err)
		}
	}
}
