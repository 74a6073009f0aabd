package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-project/veil/pixels"
)

func TestChallengesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	imgs := RandomImages(5, 3)
	if err := WriteChallenges(dir, imgs); err != nil {
		t.Fatal(err)
	}
	// A raw file sorts after the PNGs; dot files are skipped.
	raw := RandomImages(6, 1)[0]
	if err := os.WriteFile(filepath.Join(dir, "z-raw"), raw[:], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".DS_Store"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadChallenges(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := append(imgs, raw)
	if len(got) != len(want) {
		t.Fatalf("%d images, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("image %d differs after the round trip", i)
		}
	}
}

// Challenge files are a prover's input and a verifier's: anything but an
// exact image is refused with the file's name, before a large PNG is
// decoded.
func TestReadChallengesRejects(t *testing.T) {
	pngOf := func(w, h int) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"text":          {[]byte("not an image"), "neither 784 raw bytes nor a PNG"},
		"783 raw bytes": {make([]byte, pixels.Count-1), "neither 784 raw bytes nor a PNG"},
		"29x28 PNG":     {pngOf(29, 28), "29x28, want 28x28"},
		"4000x4000 PNG": {pngOf(4000, 4000), "4000x4000, want 28x28"},
		"truncated PNG": {pngOf(28, 28)[:40], "neither 784 raw bytes nor a PNG"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "c1"), c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadChallenges(dir)
			if err == nil || !strings.Contains(err.Error(), "c1: "+c.want) {
				t.Fatalf("err %v, want one naming c1 and %q", err, c.want)
			}
		})
	}
	if _, err := ReadChallenges(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no files") {
		t.Fatalf("empty directory: %v", err)
	}
	if _, err := ReadChallenges(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing directory accepted")
	}
}

func FuzzDecodeChallenge(f *testing.F) {
	var b bytes.Buffer
	_ = png.Encode(&b, ToGray(RandomImages(1, 1)[0]))
	f.Add(b.Bytes())
	f.Add(make([]byte, pixels.Count))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeChallenge(data) // must not panic
	})
}

func TestSelect(t *testing.T) {
	s := &Set{Images: RandomImages(2, 5), Labels: []uint8{0, 1, 2, 3, 4}}
	got, err := s.Select([]int{4, 0, 4})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != s.Images[4] || got[1] != s.Images[0] || got[2] != s.Images[4] {
		t.Fatal("Select returned other images")
	}
	if _, err := s.Select([]int{1, 5}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("index 5 of 5: %v", err)
	}
}

func TestParseIndices(t *testing.T) {
	got, err := ParseIndices("3, 0-2,9")
	if err != nil || len(got) != 5 || got[0] != 3 || got[1] != 0 || got[3] != 2 || got[4] != 9 {
		t.Fatalf("ParseIndices = %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "5-2", "0-5000", "1,,2"} {
		if _, err := ParseIndices(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// LoadImage reads an MNIST test image with its label, or a file without
// one; an index out of range is ErrIndex.
func TestLoadImage(t *testing.T) {
	test, err := MNISTTest()
	if err != nil {
		t.Skip(err)
	}
	want, label, _ := test.At(7)
	img, got, err := LoadImage("", 7)
	if err != nil || img != want || got != int(label) {
		t.Fatalf("LoadImage(\"\", 7): label %d, %v", got, err)
	}
	if _, _, err := LoadImage("", 10000); !errors.Is(err, ErrIndex) {
		t.Fatalf("index 10000: %v", err)
	}
	if _, label, err := LoadImage(filepath.Join(t.TempDir(), "none.png"), 0); err == nil || label != -1 {
		t.Fatalf("missing file: label %d, %v", label, err)
	}
}
