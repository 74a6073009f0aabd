package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	cases := []struct {
		name string
		xs   []float64
		want Summary
	}{
		{"one", []float64{3}, Summary{N: 1, Median: 3, P95: 3, Min: 3, Max: 3, Mean: 3}},
		{"odd, unsorted", []float64{5, 1, 3}, Summary{N: 3, Median: 3, P95: 5, Min: 1, Max: 5, Mean: 3}},
		{"even", []float64{4, 1, 2, 3}, Summary{N: 4, Median: 2.5, P95: 4, Min: 1, Max: 4, Mean: 2.5}},
		// Nearest rank: ceil(0.95·20) = 19th smallest.
		{"twenty", seq(1, 20), Summary{N: 20, Median: 10.5, P95: 19, Min: 1, Max: 20, Mean: 10.5}},
		// ceil(0.95·100) = 95th smallest.
		{"hundred", seq(1, 100), Summary{N: 100, Median: 50.5, P95: 95, Min: 1, Max: 100, Mean: 50.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Summarize(c.xs)
			if got != c.want {
				t.Fatalf("Summarize(%v) = %+v, want %+v", c.xs, got, c.want)
			}
		})
	}
	if s := Summarize(nil); s != (Summary{}) {
		t.Fatalf("Summarize(nil) = %+v", s)
	}
	// The input is not reordered.
	xs := []float64{3, 1, 2}
	Summarize(xs)
	if xs[0] != 3 || xs[1] != 1 || xs[2] != 2 {
		t.Fatalf("Summarize sorted its input: %v", xs)
	}
}

func seq(a, b int) []float64 {
	var out []float64
	for i := a; i <= b; i++ {
		out = append(out, float64(i))
	}
	return out
}

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
