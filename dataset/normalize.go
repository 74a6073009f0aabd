package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"io"
	"math"

	"golang.org/x/image/draw"

	"github.com/veil-project/veil/pixels"
)

// Limits on decoded images. A larger image is refused before its pixels are
// decoded, so that a hostile header cannot make the process allocate
// gigabytes.
const (
	MaxImageSide   = 8192
	MaxImagePixels = 40 << 20
	// MaxImageBytes bounds the encoded file read from disk or the network.
	MaxImageBytes = 64 << 20
)

// ErrNotImage is returned when the bytes are not a PNG or JPEG image.
var ErrNotImage = errors.New("not a PNG or JPEG image")

// ErrBlankImage is returned when an image holds no visible stroke.
var ErrBlankImage = errors.New("image is blank: no digit found")

// DecodeDigit reads a PNG or JPEG image of any size, colour or grey, and
// returns it normalised like MNIST (see [Normalize]).
func DecodeDigit(r io.Reader) (pixels.Image, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return pixels.Image{}, fmt.Errorf("read image: %w", err)
	}
	if len(data) > MaxImageBytes {
		return pixels.Image{}, fmt.Errorf("image file is larger than %d MiB", MaxImageBytes>>20)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return pixels.Image{}, ErrNotImage
		}
		return pixels.Image{}, fmt.Errorf("read image header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return pixels.Image{}, fmt.Errorf("image is %dx%d: it has no pixels", cfg.Width, cfg.Height)
	}
	if cfg.Width > MaxImageSide || cfg.Height > MaxImageSide || cfg.Width*cfg.Height > MaxImagePixels {
		return pixels.Image{}, fmt.Errorf("image is %dx%d: larger than the %dx%d limit", cfg.Width, cfg.Height, MaxImageSide, MaxImageSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return pixels.Image{}, fmt.Errorf("decode %s image: %w", format, err)
	}
	return Normalize(img)
}

// Normalize turns a picture of a digit into an MNIST-like image: grey,
// white ink on black, the digit scaled to fit a 20x20 box and centred by its
// mass in the 28x28 frame. A picture with dark ink on a light background is
// inverted first (decided by the mean of its border pixels).
func Normalize(img image.Image) (pixels.Image, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return pixels.Image{}, fmt.Errorf("image is %dx%d: it has no pixels", w, h)
	}
	grey := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
			_, _, _, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			// A transparent pixel is background: treat it as white paper.
			v := float64(c.Y)*float64(a)/0xffff + 255*(1-float64(a)/0xffff)
			grey[y*w+x] = v
		}
	}
	// Polarity: MNIST has white strokes on black. The border is background.
	var border float64
	var nb int
	for x := 0; x < w; x++ {
		border += grey[x] + grey[(h-1)*w+x]
		nb += 2
	}
	for y := 0; y < h; y++ {
		border += grey[y*w] + grey[y*w+w-1]
		nb += 2
	}
	if border/float64(nb) > 127 {
		for i := range grey {
			grey[i] = 255 - grey[i]
		}
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range grey {
		lo = math.Min(lo, v)
		hi = math.Max(hi, v)
	}
	if hi-lo < 16 {
		return pixels.Image{}, ErrBlankImage
	}
	// Stretch contrast and cut the background noise below 20%.
	for i, v := range grey {
		v = (v - lo) / (hi - lo)
		v = (v - 0.2) / 0.8
		grey[i] = math.Max(0, v)
	}
	// Bounding box of the ink.
	x0, y0, x1, y1 := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if grey[y*w+x] > 0 {
				x0, y0 = min(x0, x), min(y0, y)
				x1, y1 = max(x1, x), max(y1, y)
			}
		}
	}
	if x1 < 0 {
		return pixels.Image{}, ErrBlankImage
	}
	bw, bh := x1-x0+1, y1-y0+1
	src := image.NewGray(image.Rect(0, 0, bw, bh))
	for y := 0; y < bh; y++ {
		for x := 0; x < bw; x++ {
			src.Pix[y*src.Stride+x] = uint8(math.Round(255 * grey[(y0+y)*w+x0+x]))
		}
	}
	// Fit the box into 20x20, keeping the aspect ratio.
	scale := 20 / float64(max(bw, bh))
	tw := max(1, int(math.Round(float64(bw)*scale)))
	th := max(1, int(math.Round(float64(bh)*scale)))
	box := image.NewGray(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(box, box.Bounds(), src, src.Bounds(), draw.Src, nil)
	// Centre of mass of the box.
	var mass, mx, my float64
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			v := float64(box.Pix[y*box.Stride+x])
			mass += v
			mx += v * (float64(x) + 0.5)
			my += v * (float64(y) + 0.5)
		}
	}
	if mass == 0 {
		return pixels.Image{}, ErrBlankImage
	}
	ox := int(math.Round(pixels.Side/2 - mx/mass))
	oy := int(math.Round(pixels.Side/2 - my/mass))
	var out pixels.Image
	for y := 0; y < th; y++ {
		for x := 0; x < tw; x++ {
			X, Y := x+ox, y+oy
			if X < 0 || Y < 0 || X >= pixels.Side || Y >= pixels.Side {
				continue
			}
			out[Y*pixels.Side+X] = box.Pix[y*box.Stride+x]
		}
	}
	return out, nil
}

// ToGray returns an image as an *image.Gray, for writing it out as a PNG.
func ToGray(im pixels.Image) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, pixels.Side, pixels.Side))
	copy(g.Pix, im[:])
	return g
}
