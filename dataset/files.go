package dataset

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/veil-project/veil/pixels"
)

// LoadDigit reads a PNG or JPEG file and returns it normalised like MNIST
// (see [DecodeDigit]).
func LoadDigit(path string) (pixels.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return pixels.Image{}, fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	img, err := DecodeDigit(f)
	if err != nil {
		return pixels.Image{}, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// Select returns the images at the given indices, in that order.
func (s *Set) Select(indices []int) ([]pixels.Image, error) {
	out := make([]pixels.Image, len(indices))
	for k, i := range indices {
		img, _, err := s.At(i)
		if err != nil {
			return nil, err
		}
		out[k] = img
	}
	return out, nil
}

// ReadChallenges reads a directory of challenge images: its regular files
// in name order (dot files skipped), each a Side×Side grey PNG or Count raw
// bytes. Pixels are taken exactly, never resampled: a proof is about these
// exact integers.
func ReadChallenges(dir string) ([]pixels.Image, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("challenges: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("challenges: no files in %s", dir)
	}
	out := make([]pixels.Image, len(names))
	for i, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("challenges: %w", err)
		}
		if out[i], err = decodeChallenge(b); err != nil {
			return nil, fmt.Errorf("challenges: %s: %w", n, err)
		}
	}
	return out, nil
}

// decodeChallenge reads one challenge file: raw pixels or an exact-size PNG.
func decodeChallenge(b []byte) (pixels.Image, error) {
	if len(b) == pixels.Count && !bytes.HasPrefix(b, []byte("\x89PNG")) {
		return pixels.FromBytes(b)
	}
	var img pixels.Image
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return img, fmt.Errorf("neither %d raw bytes nor a PNG: %v", pixels.Count, err)
	}
	if cfg.Width != pixels.Side || cfg.Height != pixels.Side {
		return img, fmt.Errorf("%dx%d, want %dx%d", cfg.Width, cfg.Height, pixels.Side, pixels.Side)
	}
	p, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return img, fmt.Errorf("neither %d raw bytes nor a PNG: %v", pixels.Count, err)
	}
	r := p.Bounds()
	for y := 0; y < pixels.Side; y++ {
		for x := 0; x < pixels.Side; x++ {
			img[y*pixels.Side+x] = color.GrayModel.Convert(p.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y
		}
	}
	return img, nil
}

// WriteChallenges writes images as grey PNGs challenge-000.png, ... into
// dir (created if needed), in the form ReadChallenges reads back exactly.
func WriteChallenges(dir string, imgs []pixels.Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write challenges: %w", err)
	}
	for i, img := range imgs {
		var b bytes.Buffer
		if err := png.Encode(&b, ToGray(img)); err != nil {
			return fmt.Errorf("write challenges: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("challenge-%03d.png", i)), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write challenges: %w", err)
		}
	}
	return nil
}

// LoadImage returns a digit: the image file at path (LoadDigit) with label
// -1, or, when path is empty, MNIST test image index with its label. An
// index out of range wraps ErrIndex.
func LoadImage(path string, index int) (pixels.Image, int, error) {
	if path != "" {
		img, err := LoadDigit(path)
		return img, -1, err
	}
	test, err := MNISTTest()
	if err != nil {
		return pixels.Image{}, -1, err
	}
	img, label, err := test.At(index)
	return img, int(label), err
}
