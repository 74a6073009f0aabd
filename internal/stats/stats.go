package stats

import (
	"math"
	"slices"
	"time"
)

// Milliseconds converts a duration to float milliseconds, the unit of
// every latency Veil reports (JSON, tables, the inference API's Timing).
func Milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Quantile returns the q-quantile of xs by nearest rank: the smallest
// observation with at least a fraction q of the observations at or below
// it (q = 1 is the maximum). It returns 0 for no observations and does not
// reorder xs.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantileSorted(s, q)
}

func quantileSorted(s []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}

// Summary condenses repeated observations of one quantity.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
}

// Summarize returns the median (the mean of the two middle observations
// when there is an even number), the 95th percentile by nearest rank (see
// Quantile), the extremes and the mean. It returns the zero Summary for no
// observations and does not reorder xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	var sum float64
	for _, x := range s {
		sum += x
	}
	return Summary{N: n, Median: med, P95: quantileSorted(s, 0.95), Min: s[0], Max: s[n-1], Mean: sum / float64(n)}
}
