package zk

import (
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
)

// TestTermStatsDefault reports how many constraint terms need a scalar
// multiplication in the phase-2 initialisation (diagnostic; -v).
func TestTermStatsDefault(t *testing.T) {
	if testing.Short() || !testing.Verbose() {
		t.Skip("diagnostic")
	}
	f, _ := model.Default()
	spec, _ := circuits.SpecOf(f.Model)
	r, err := Compile(spec, 3)
	if err != nil {
		t.Fatal(err)
	}
	nbInternal, nbSecret, nbPublic := r.GetNbVariables()
	nW := nbInternal + nbSecret + nbPublic
	type cnt struct{ kinds [4]int }
	bigPerWire := [3][]int{make([]int, nW), make([]int, nW), make([]int, nW)}
	var c [3]cnt
	it := r.GetR1CIterator()
	for con := it.Next(); con != nil; con = it.Next() {
		for s, le := range [][]struct{ w, k int }{nil, nil, nil} {
			_ = le
			_ = s
		}
		for s, le := range []interface{}{con.L, con.R, con.O} {
			_ = le
			var terms = con.L
			if s == 1 {
				terms = con.R
			} else if s == 2 {
				terms = con.O
			}
			for _, tm := range terms {
				k := coeffKind(tm.CID)
				if k < 0 {
					k = 1
				}
				c[s].kinds[k]++
				if k == 3 {
					bigPerWire[s][tm.VID]++
				}
			}
		}
	}
	for s, name := range []string{"L", "R", "O"} {
		indiv, msm := 0, 0
		for _, n := range bigPerWire[s] {
			if n >= msmThreshold {
				msm += n
			} else {
				indiv += n
			}
		}
		t.Logf("%s: zero %d, ±1 %d, 2 %d, other %d (individual %d, in MSMs %d)", name, c[s].kinds[0], c[s].kinds[1], c[s].kinds[2], c[s].kinds[3], indiv, msm)
	}
	t.Logf("wires %d, constraints %d", nW, r.GetNbConstraints())
}
