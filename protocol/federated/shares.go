package federated

import (
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// Contribution shares. Each owner's share of the model's fees is its
// leave-one-out marginal on the public validation set: the accuracy of
// the model trained by all owners minus that of the model trained, by the
// same protocol and budget, by all owners but it; negative marginals count
// as zero, and the shares are the marginals normalised to 10000 basis
// points (largest remainder). Leave-one-out needs N extra trainings, where
// a Shapley value over 4 owners needs 2^4 − 1 coalitions (and its
// Monte-Carlo approximations many more trainings for a stable estimate);
// with a handful of owners whose data barely overlap (non-IID), the
// marginal of each owner is large and leave-one-out ranks them as Shapley
// would. Its known weakness, that two owners holding the same data both
// get little, is stated in docs/training.md. Every leave-one-out training
// runs under encryption like the real one and is recorded on the ledger.

// ShareMethodLOO names the method on the ledger.
const ShareMethodLOO = "leave-one-out marginal validation accuracy (negative as 0), normalised to 10000 bp by largest remainder"

// ShareMethodSamples names the fallback: shares by committed sample counts.
const ShareMethodSamples = "committed sample counts, normalised to 10000 bp by largest remainder"

// sharesFromWeights normalises non-negative weights to basis points that
// sum to exactly 10000 (largest remainder; ties to the lower index). It
// returns nil if every weight is zero.
func sharesFromWeights(w []float64) []uint32 {
	var total float64
	for _, x := range w {
		if x > 0 {
			total += x
		}
	}
	if !(total > 0) {
		return nil
	}
	out := make([]uint32, len(w))
	type rem struct {
		i int
		r float64
	}
	var rems []rem
	sum := 0
	for i, x := range w {
		if x <= 0 {
			continue
		}
		v := x / total * 10000
		out[i] = uint32(math.Floor(v))
		sum += int(out[i])
		rems = append(rems, rem{i, v - math.Floor(v)})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return a.i - b.i
	})
	for k := 0; sum < 10000; k++ {
		out[rems[k%len(rems)].i]++
		sum++
	}
	return out
}

// LOOShares turns the validation accuracy of the full model and of each
// leave-one-out model into shares; if no owner's marginal is positive it
// falls back to sample counts.
func LOOShares(full float64, without []float64, samples []uint64) ([]uint32, string) {
	marg := make([]float64, len(without))
	for i, a := range without {
		marg[i] = full - a
	}
	if s := sharesFromWeights(marg); s != nil {
		return s, ShareMethodLOO
	}
	w := make([]float64, len(samples))
	for i, n := range samples {
		w[i] = float64(n)
	}
	return sharesFromWeights(w), ShareMethodSamples + " (no owner's leave-one-out marginal was positive)"
}

// Accuracy is the float model's accuracy on s, on every core.
func Accuracy(f *model.Float, s *dataset.Set) float64 {
	workers := runtime.GOMAXPROCS(0)
	counts := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < s.Len(); i += workers {
				if model.Class(f.Forward(model.PixelsToInput(s.Images[i][:]))) == int(s.Labels[i]) {
					counts[w]++
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range counts {
		n += c
	}
	if s.Len() == 0 {
		return 0
	}
	return float64(n) / float64(s.Len())
}
