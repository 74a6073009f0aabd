package he

import (
	"math"
	"testing"

	"github.com/veil-project/veil/pixels"
)

// The flooding noise must dominate the weight-dependent noise of a result:
// σ_f at least 2^8 times the RMS noise coefficient, and a KL divergence per
// query below 0.05 nats (documented in docs/he.md).
func TestFloodingDrownsEvaluationNoise(t *testing.T) {
	f := getFix(t)
	img := make([]uint8, pixels.Count)
	for i := range img {
		img[i] = uint8((i * 7) % 256)
	}
	imgs := [][]uint8{img, img, img, img, img, img, img, img}
	a, _ := f.sk.Encrypt(f.net.Layout(), imgs)
	b, _ := f.sk.Encrypt(f.net.Layout(), imgs)
	r, err := f.net.MeasureNoise(f.sk, a, b, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("weight-dependent noise per coefficient: max %.3g (2^%.1f), rms %.3g; flooding σ 2^%.0f; KL %.3g nats, statistical distance ≤ %.3g",
		r.MaxCoeff, math.Log2(r.MaxCoeff), r.RMSCoeff, math.Log2(r.FloodSigma), r.KL, r.StatDistance)
	if r.MaxCoeff == 0 {
		t.Fatal("two encryptions gave identical results: the noise measurement is broken")
	}
	// The RMS and the divergence are stable from run to run (the largest
	// coefficient, a tail statistic, varies by about 2^±0.5).
	if ratio := r.FloodSigma / r.RMSCoeff; ratio < 1<<8 {
		t.Fatalf("flooding σ is only %.0f times the RMS noise coefficient", ratio)
	}
	if r.KL > 0.05 {
		t.Fatalf("KL divergence %.3g nats per query, above the documented 0.05", r.KL)
	}
}
