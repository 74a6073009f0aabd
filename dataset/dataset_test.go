package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/veil-project/veil/pixels"
)

func TestLoadMNIST(t *testing.T) {
	dir, err := FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	test, err := LoadTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 10000 {
		t.Fatalf("%d test images, want 10000", test.Len())
	}
	// The first test image of MNIST is a 7.
	if _, label, _ := test.At(0); label != 7 {
		t.Fatalf("test image 0 has label %d, want 7", label)
	}
	if _, _, err := test.At(10000); !errors.Is(err, ErrIndex) {
		t.Fatalf("At(10000): %v", err)
	}
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A dark digit drawn on white paper, large and off-centre, must come out
// white on black, 20 pixels tall and centred by mass.
func TestNormalizeDarkOnLight(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, color.White)
		}
	}
	// A thick vertical bar (a "1") near the left edge.
	for y := 40; y < 180; y++ {
		for x := 30; x < 50; x++ {
			img.Set(x, y, color.RGBA{10, 20, 200, 255})
		}
	}
	out, err := DecodeDigit(bytes.NewReader(encodePNG(t, img)))
	if err != nil {
		t.Fatal(err)
	}
	var mass, my, mx float64
	top, bottom := pixels.Side, -1
	for y := 0; y < pixels.Side; y++ {
		for x := 0; x < pixels.Side; x++ {
			v := float64(out[y*pixels.Side+x])
			if v > 0 {
				top, bottom = min(top, y), max(bottom, y)
			}
			mass += v
			mx += v * (float64(x) + 0.5)
			my += v * (float64(y) + 0.5)
		}
	}
	if out[0] != 0 || out[pixels.Count-1] != 0 {
		t.Fatal("background is not black")
	}
	if h := bottom - top + 1; h < 19 || h > 21 {
		t.Fatalf("digit is %d pixels tall, want 20", h)
	}
	if cx, cy := mx/mass, my/mass; cx < 13 || cx > 15 || cy < 13 || cy > 15 {
		t.Fatalf("centre of mass (%.1f, %.1f), want (14, 14)", cx, cy)
	}
}

func TestDecodeDigitRejectsBadInput(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 30, 30))
	good := image.NewGray(image.Rect(0, 0, 30, 30))
	for i := 100; i < 400; i++ {
		good.Pix[i] = 255
	}
	goodPNG := encodePNG(t, good)
	// A PNG header that declares 20000x20000 pixels: refused before decoding.
	huge := pngWithSize(t, 20000, 20000)
	zero := pngWithSize(t, 0, 0)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"text file", []byte("this is not an image\n"), "not a PNG or JPEG"},
		{"empty", nil, "not a PNG or JPEG"},
		{"truncated png", goodPNG[:len(goodPNG)/2], "decode png"},
		{"blank", encodePNG(t, blank), "blank"},
		{"20000x20000", huge, "larger than"},
		{"0x0", zero, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeDigit(bytes.NewReader(c.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	if _, err := DecodeDigit(bytes.NewReader(goodPNG)); err != nil {
		t.Fatalf("good image refused: %v", err)
	}
}

// pngWithSize returns a small PNG whose header claims w x h pixels (with a
// valid header checksum, so that only the size is wrong).
func pngWithSize(t *testing.T, w, h uint32) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func FuzzDecodeDigit(f *testing.F) {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	img.Pix[20] = 200
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	f.Add(buf.Bytes())
	f.Add([]byte("\xff\xd8\xff\xe0garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeDigit(bytes.NewReader(data)) // must not panic or hang
	})
}

func TestAugmentIsDeterministicAndKeepsTheDigit(t *testing.T) {
	dir, err := FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := s.Images[0]
	mass := func(im pixels.Image) (m float64) {
		for _, v := range im {
			m += float64(v)
		}
		return
	}
	changed := 0
	for seed := uint64(0); seed < 20; seed++ {
		a := Augment(img, rand.New(rand.NewPCG(seed, 1)))
		b := Augment(img, rand.New(rand.NewPCG(seed, 1)))
		if a != b {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		if a != img {
			changed++
		}
		// Scaling within ±10% changes the ink mass by at most about ±25%.
		if r := mass(a) / mass(img); r < 0.6 || r > 1.4 {
			t.Fatalf("seed %d: ink mass ratio %.2f", seed, r)
		}
	}
	if changed < 18 {
		t.Fatalf("only %d of 20 augmentations changed the image", changed)
	}
}
