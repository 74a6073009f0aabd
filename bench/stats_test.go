package bench

import (
	"math"
	"testing"
)

func TestFoldModelMatchesForward(t *testing.T) {
	m, err := randomModel(64, 3)
	if err != nil {
		t.Fatal(err)
	}
	first, last, err := foldModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if first.Rows != 64 || first.Cols != 784 || last.Rows != 10 || last.Cols != 64 {
		t.Fatalf("folded shapes %dx%d, %dx%d", first.Rows, first.Cols, last.Rows, last.Cols)
	}
	img := randomImages(1)[0]
	x := make([]float64, 784)
	for i, p := range img {
		x[i] = float64(p) / 256
	}
	apply := func(a affine, x []float64) []float64 {
		y := make([]float64, a.Rows)
		for i := range y {
			y[i] = a.B[i]
			for j, v := range x {
				y[i] += a.W[i*a.Cols+j] * v
			}
		}
		return y
	}
	h := apply(first, x)
	for i := range h {
		h[i] *= h[i]
	}
	got := apply(last, h)
	want := m.Dequantize().Forward(x)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
			t.Fatalf("score %d: folded %g, Forward %g", i, got[i], want[i])
		}
	}
}

func TestFoldDefaultModelComposesLayers(t *testing.T) {
	r := newTestRunner(t)
	first, last, err := foldModel(r.def)
	if err != nil {
		t.Fatal(err)
	}
	// 784-32-128-sq-10: the two first dense layers compose into 128×784.
	if first.Rows != 128 || first.Cols != 784 || last.Rows != 10 || last.Cols != 128 {
		t.Fatalf("folded shapes %dx%d, %dx%d", first.Rows, first.Cols, last.Rows, last.Cols)
	}
}
