package stats

import (
	"testing"
	"time"
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

func TestQuantile(t *testing.T) {
	xs := seq(1, 1000)
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.5, 500}, {0.95, 950}, {0.999, 999}, {1, 1000}} {
		if got := Quantile(xs, c.q); got != c.want {
			t.Errorf("Quantile(1..1000, %g) = %g, want %g", c.q, got, c.want)
		}
	}
	if got := Quantile([]float64{7, 3}, 0.5); got != 3 {
		t.Errorf("nearest-rank median of {7, 3} = %g, want 3", got)
	}
	if Quantile(nil, 0.5) != 0 {
		t.Error("Quantile(nil) != 0")
	}
}

func TestMilliseconds(t *testing.T) {
	if got := Milliseconds(1500 * time.Microsecond); got != 1.5 {
		t.Fatalf("1.5 ms = %g", got)
	}
	if got := Milliseconds(2 * time.Second); got != 2000 {
		t.Fatalf("2 s = %g ms", got)
	}
}
