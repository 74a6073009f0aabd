package dataset

import (
	"math"
	"math/rand/v2"

	"github.com/veil-project/veil/pixels"
)

// Augment applies a random small affine distortion: rotation within ±12°,
// scaling within ±10%, shear within ±0.15 and translation within ±2 pixels,
// with bilinear resampling. Training uses it for data augmentation, and
// clients to make challenge images that a server cannot predict.
func Augment(img pixels.Image, rng *rand.Rand) pixels.Image {
	if rng.IntN(4) == 0 {
		return shift(img, rng.IntN(5)-2, rng.IntN(5)-2)
	}
	th := (rng.Float64()*2 - 1) * 12 * math.Pi / 180
	sc := 1 + (rng.Float64()*2-1)*0.1
	sh := (rng.Float64()*2 - 1) * 0.15
	tx, ty := (rng.Float64()*2-1)*2, (rng.Float64()*2-1)*2
	// Inverse map: output pixel -> source pixel, around the image centre.
	c, s := math.Cos(th)/sc, math.Sin(th)/sc
	const mid = (pixels.Side - 1) / 2.0
	var out pixels.Image
	for y := 0; y < pixels.Side; y++ {
		for x := 0; x < pixels.Side; x++ {
			u, v := float64(x)-mid-tx, float64(y)-mid-ty
			u -= sh * v
			sx := c*u + s*v + mid
			sy := -s*u + c*v + mid
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			var acc float64
			for _, t := range [4]struct {
				dx, dy int
				w      float64
			}{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}} {
				X, Y := x0+t.dx, y0+t.dy
				if X >= 0 && Y >= 0 && X < pixels.Side && Y < pixels.Side {
					acc += t.w * float64(img[Y*pixels.Side+X])
				}
			}
			out[y*pixels.Side+x] = uint8(math.Round(math.Min(255, acc)))
		}
	}
	return out
}

// shift translates an image by (dx, dy) pixels, filling with black.
func shift(img pixels.Image, dx, dy int) pixels.Image {
	if dx == 0 && dy == 0 {
		return img
	}
	var out pixels.Image
	for y := 0; y < pixels.Side; y++ {
		sy := y - dy
		if sy < 0 || sy >= pixels.Side {
			continue
		}
		for x := 0; x < pixels.Side; x++ {
			sx := x - dx
			if sx < 0 || sx >= pixels.Side {
				continue
			}
			out[y*pixels.Side+x] = img[sy*pixels.Side+sx]
		}
	}
	return out
}
