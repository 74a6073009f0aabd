package he

import (
	"fmt"
	"slices"
	"sync"

	common "github.com/tuneinsight/lattigo/v6/circuits/common/lintrans"
	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring/ringqp"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
)

// splitTransform is a baby-step giant-step linear transformation whose giant
// steps are divided into parts evaluated concurrently. Lattigo's lintrans
// evaluator runs on one core; this keeps its algorithm (one decomposition,
// hoisted baby steps, lazy giant steps) and spreads both the baby-step
// rotations and the giant-step groups over the workers, then adds the
// partial results.
type splitTransform struct {
	full   common.LinearTransformation
	parts  []common.LinearTransformation
	babies []int // baby-step rotations, without 0
	// scratch recycles the buffers of an evaluation (about 8 MB for the
	// first matrix): allocating them anew each time made the garbage
	// collector a visible part of the latency.
	scratch *sync.Pool
}

// transformScratch is the memory one evaluation of a transform needs.
type transformScratch struct {
	decomp []ringqp.Poly
	pre    map[int]*rlwe.Element[ringqp.Poly]
	outs   []*rlwe.Ciphertext // partial results of parts 1..
}

func newSplitTransform(lt common.LinearTransformation, workers int) splitTransform {
	index, _, babies := lt.BSGSIndex()
	giants := make([]int, 0, len(index))
	for j := range index {
		giants = append(giants, j)
	}
	slices.Sort(giants)
	// Deal the giant-step groups round-robin, biggest first, so that parts
	// hold about as many diagonals each.
	slices.SortStableFunc(giants, func(a, b int) int { return len(index[b]) - len(index[a]) })
	parts := make([]common.LinearTransformation, 0, workers)
	load := make([]int, workers)
	members := make([][]int, workers)
	for _, j := range giants {
		w := 0
		for k := range load {
			if load[k] < load[w] {
				w = k
			}
		}
		members[w] = append(members[w], j)
		load[w] += len(index[j])
	}
	for _, m := range members {
		if len(m) == 0 {
			continue
		}
		part := lt
		part.Vec = map[int]ringqp.Poly{}
		for _, j := range m {
			for _, i := range index[j] {
				part.Vec[j+i] = lt.Vec[j+i]
			}
		}
		parts = append(parts, part)
	}
	b := make([]int, 0, len(babies))
	for _, i := range babies {
		if i != 0 {
			b = append(b, i)
		}
	}
	st := splitTransform{full: lt, parts: parts, babies: b, scratch: &sync.Pool{}}
	return st
}

func (st splitTransform) getScratch(cp ckks.Parameters, levelQ, levelP int) *transformScratch {
	if s, ok := st.scratch.Get().(*transformScratch); ok && s.outs[0].Level() == levelQ {
		return s
	}
	ringQP := cp.RingQP().AtLevel(levelQ, levelP)
	s := &transformScratch{
		decomp: make([]ringqp.Poly, cp.BaseRNSDecompositionVectorSize(levelQ, levelP)),
		pre:    make(map[int]*rlwe.Element[ringqp.Poly], len(st.babies)),
		outs:   make([]*rlwe.Ciphertext, max(1, len(st.parts))),
	}
	for i := range s.decomp {
		s.decomp[i] = ringQP.NewPoly()
	}
	for _, i := range st.babies {
		s.pre[i] = rlwe.NewElementExtended(cp, 1, levelQ, levelP)
	}
	for k := range s.outs {
		s.outs[k] = ckks.NewCiphertext(cp, 1, levelQ)
	}
	return s
}

// evaluate computes out = M(ctIn) with one evaluator per worker.
func (st splitTransform) evaluate(cp ckks.Parameters, evs []*ckks.Evaluator, ctIn *rlwe.Ciphertext, out *rlwe.Ciphertext) error {
	levelQ := min(st.full.LevelQ, ctIn.Level())
	levelP := st.full.LevelP
	scratch := st.getScratch(cp, levelQ, levelP)
	defer st.scratch.Put(scratch)
	decomp, pre := scratch.decomp, scratch.pre
	evs[0].DecomposeNTT(levelQ, levelP, levelP+1, ctIn.Value[1], ctIn.IsNTT, decomp)
	// Baby steps: hoisted rotations of the input, shared by all parts.
	if err := forEach(len(evs), len(st.babies), func(w, k int) error {
		i := st.babies[k]
		if err := evs[w].AutomorphismHoistedLazy(levelQ, ctIn, decomp, cp.GaloisElement(i), pre[i]); err != nil {
			return fmt.Errorf("baby step %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return err
	}
	// Giant steps: one part per worker.
	outs := make([]*rlwe.Ciphertext, len(st.parts))
	outs[0] = out
	for k := 1; k < len(outs); k++ {
		outs[k] = scratch.outs[k]
	}
	if err := forEach(len(evs), len(st.parts), func(w, k int) error {
		le := common.Evaluator{Evaluator: evs[w]}
		if err := le.MultiplyByDiagMatrixBSGS(ctIn, st.parts[k], pre, outs[k]); err != nil {
			return fmt.Errorf("giant steps: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	for k := 1; k < len(outs); k++ {
		if err := evs[0].Add(out, outs[k], out); err != nil {
			return err
		}
	}
	return nil
}

// forEach runs f(worker, item) for items 0..n-1 on `workers` goroutines;
// worker w handles items w, w+workers, ...
func forEach(workers, n int, f func(w, k int) error) error {
	if workers <= 1 || n <= 1 {
		for k := 0; k < n; k++ {
			if err := f(0, k); err != nil {
				return err
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := w; k < n; k += workers {
				if err := f(w, k); err != nil {
					errs[w] = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
