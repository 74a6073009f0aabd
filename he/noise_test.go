package he

import (
	"math"
	"testing"

	"github.com/veil-project/veil/model"
)

// The flooding noise must dominate the weight-dependent noise of a result:
// here by a factor of at least 2^6 per coefficient, so that the divergence
// a client can exploit per query is tiny (documented in docs/he.md).
func TestFloodingDrownsEvaluationNoise(t *testing.T) {
	f := getFix(t)
	img := make([]uint8, model.InputSize)
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
	if ratio := r.FloodSigma / r.MaxCoeff; ratio < 1<<6 {
		t.Fatalf("flooding σ is only %.0f times the largest noise coefficient", ratio)
	}
}
