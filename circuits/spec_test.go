package circuits

import (
	"bytes"
	"strings"
	"testing"

	"github.com/veil-project/veil/internal/testmodels"
)

// The registered spec has one encoding: it round-trips, and any other text
// (reordered, padded, non-canonical numbers, inconsistent layers) is
// refused.
func TestSpecCanonicalEncoding(t *testing.T) {
	s, err := SpecOf(testmodels.Tiny(3))
	if err != nil {
		t.Fatal(err)
	}
	enc := s.Canonical()
	back, err := ParseSpec(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Canonical(), enc) || back.ID() != s.ID() || back.OutputFrac() != s.OutputFrac() || back.Tolerance != s.Tolerance {
		t.Fatalf("round trip changed the spec:\n%s\n%s", enc, back.Canonical())
	}
	if s.Tolerance != int64(1)<<(s.OutputFrac()-1) {
		t.Fatalf("tolerance %d units, want half a real unit (2^%d)", s.Tolerance, s.OutputFrac()-1)
	}
	text := string(enc)
	bad := map[string]string{
		"trailing space":        strings.Replace(text, "\n", " \n", 1),
		"leading zero":          strings.Replace(text, "classes=10", "classes=010", 1),
		"missing final newline": strings.TrimSuffix(text, "\n"),
		"layer count":           strings.Replace(text, "layers=3", "layers=4", 1),
		"wrong input size":      strings.Replace(text, "in=784", "in=783", 1),
		"unknown kind":          strings.Replace(text, "square", "cube", 1),
		"zero tolerance":        strings.Replace(text, "tolerance=", "tolerance=0", 1),
		"empty":                 "",
	}
	for name, b := range bad {
		if _, err := ParseSpec([]byte(b)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseSpec: no input panics, and whatever parses is canonical.
func FuzzParseSpec(f *testing.F) {
	s, _ := SpecOf(testmodels.Tiny(3))
	f.Add(s.Canonical())
	f.Add([]byte("veil-spec/v2 classes=10 input_frac=8 tolerance=1 layers=1\ndense in=784 out=10 wbits=8 wfrac=7 bbits=20 shift=0 acc=[-5,5]\n"))
	if pm, err := testmodels.Poly(1); err == nil {
		if ps, err := SpecOf(pm); err == nil {
			f.Add(ps.Canonical())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := ParseSpec(data)
		if err == nil && !bytes.Equal(sp.Canonical(), data) {
			t.Fatalf("parsed a non-canonical spec: %q", data)
		}
	})
}
