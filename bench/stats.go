package bench

import (
	"math"
	"slices"
	"time"
)

// Summary condenses repeated observations of one quantity.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

// Summarize returns the median, the 95th percentile (nearest rank: the
// smallest observation with at least 95% of the observations at or below
// it), the extremes and the mean. It returns the zero Summary for no
// observations.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	var med float64
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.95 * float64(n)))
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Summary{N: n, Median: med, P95: s[max(0, rank-1)], Min: s[0], Max: s[n-1], Mean: sum / float64(n)}
}

// ms converts a duration to float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// msList converts durations to milliseconds.
func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}
