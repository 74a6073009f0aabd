package federated

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// The decrypted aggregate's checks: the weight slot must be the committed
// weights of the owners named, the check slots their check values; noise
// at the decryption's level passes, an error of 2^-9 does not. The control
// variate comes out exactly zero where every owner's is zero, whatever the
// decryption noise.
func TestOpenAggregate(t *testing.T) {
	l := newLayout(1000, 8192, true)
	weights := []float64{0.4, 0.3, 0.2, 0.1}
	owners := []int{0, 1, 3}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func() float64 { return (2*rng.Float64() - 1) * 4e-5 } // above the largest error measured (2.7e-5)
	build := func() []float64 {
		sum := make([]float64, l.slots)
		for _, o := range owners {
			delta, ci := make([]float64, 1000), make([]float64, 1000)
			for i := range delta {
				delta[i] = float64(o+1) * 1e-3
				if i >= 500 { // active coordinates
					ci[i] = 0.01 * float64(o+1)
				}
			}
			v, err := l.buildUpdate(delta, ci, weights[o], "t", 3, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range v {
				sum[i] += v[i]
			}
		}
		for i := range sum {
			sum[i] += noise()
		}
		return sum
	}
	vals := build()
	mean, c, err := l.openAggregate(vals, "t", 3, owners, weights)
	if err != nil {
		t.Fatal(err)
	}
	wantMean := (0.4*1e-3 + 0.3*2e-3 + 0.1*4e-3) / 0.8
	if d := mean[0] - wantMean; d > 1e-4 || d < -1e-4 {
		t.Fatalf("mean change %g, want %g", mean[0], wantMean)
	}
	for i := range 500 {
		if c[i] != 0 {
			t.Fatalf("control variate %d is %g, not exactly 0", i, c[i])
		}
	}
	wantC := (0.4*0.01 + 0.3*0.02 + 0.1*0.04) / 0.8
	if d := c[700] - wantC; d > controlGrid || d < -controlGrid {
		t.Fatalf("control variate %g, want %g", c[700], wantC)
	}
	for _, bad := range []struct {
		name string
		edit func([]float64)
	}{
		{"an owner's weight inflated", func(v []float64) { v[l.weightSlot()] += 0.05 }},
		{"a check slot off by 2^-9", func(v []float64) { v[l.weightSlot()+17] += 1.0 / 512 }},
		{"garbage (another key)", func(v []float64) {
			for i := range v {
				v[i] = rng.NormFloat64() * 1000
			}
		}},
	} {
		v := build()
		bad.edit(v)
		if _, _, err := l.openAggregate(v, "t", 3, owners, weights); !errors.Is(err, errCheck) {
			t.Errorf("%s: %v", bad.name, err)
		}
	}
	// Another round's or another owner set's check values do not pass.
	if _, _, err := l.openAggregate(build(), "t", 4, owners, weights); !errors.Is(err, errCheck) {
		t.Errorf("checks of round 3 accepted for round 4: %v", err)
	}
	if _, _, err := l.openAggregate(build(), "t", 3, []int{0, 1, 2}, weights); !errors.Is(err, errCheck) {
		t.Errorf("an aggregate of owners 0,1,3 accepted as 0,1,2: %v", err)
	}
}
