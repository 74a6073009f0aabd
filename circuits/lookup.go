package circuits

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/multicommit"
)

// Range checks use a log-derivative lookup (Haböck, eprint 2022/1530) into
// one table that holds, for every width w in 1..8, the keys t + 256·w for
// t in [0, 2^w): 510 entries. Checking that v has w bits means looking up
// v + 256·w. Each lookup costs one R1CS constraint (an inverse), against
// about two for gnark's std/rangecheck, which also decomposes every value;
// with ~30,000 weights to check that halves the cost of the commitment.
//
// Soundness: with X drawn by Fiat–Shamir from a Groth16 (BSB22) commitment
// to every wire the looked-up values depend on, and to the multiplicities,
//
//	Σ_q 1/(X - key_q) = Σ_t m_t/(X - t)
//
// holds for a key outside the table with probability at most
// (#queries + #table)/p over X (Schwartz–Zippel on the cleared
// denominators), since p is far larger than the number of queries.

const tableMaxBits = 8

// Hints returns the solver hints the circuit uses; pass them to the prover
// (solver.WithHints).
func Hints() []solver.Hint {
	return []solver.Hint{decomposeHint, multiplicityHint, identityHint}
}

// decomposeHint: inputs (v, skip, w_1..w_n) -> the n consecutive
// little-endian bit fields of widths w_i of v >> skip. The constraints, not
// the hint, ensure they are right.
func decomposeHint(_ *big.Int, in []*big.Int, out []*big.Int) error {
	if len(in) != len(out)+2 {
		return fmt.Errorf("decompose: %d inputs for %d outputs", len(in), len(out))
	}
	v := new(big.Int).Rsh(in[0], uint(in[1].Uint64()))
	for i := range out {
		w := uint(in[i+2].Uint64())
		mask := new(big.Int).Lsh(big.NewInt(1), w)
		mask.Sub(mask, big.NewInt(1))
		out[i].And(v, mask)
		v.Rsh(v, w)
	}
	return nil
}

// multiplicityHint: inputs (n, table_1..table_n, queries...) -> how many
// times each table entry is queried.
func multiplicityHint(_ *big.Int, in []*big.Int, out []*big.Int) error {
	n := int(in[0].Int64())
	if len(out) != n || len(in) < n+1 {
		return fmt.Errorf("multiplicity: bad arity")
	}
	idx := make(map[string]int, n)
	for i := 0; i < n; i++ {
		idx[in[1+i].String()] = i
		out[i].SetInt64(0)
	}
	for _, q := range in[1+n:] {
		if i, ok := idx[q.String()]; ok {
			out[i].Add(out[i], big.NewInt(1))
		}
		// A key outside the table makes the final equation fail; the
		// prover cannot help it.
	}
	return nil
}

// identityHint copies its input: with one equality constraint it turns a
// linear combination into a single wire.
func identityHint(_ *big.Int, in []*big.Int, out []*big.Int) error {
	for i := range out {
		out[i].Set(in[i])
	}
	return nil
}

// rangeChecker collects lookups and the wires to commit to, then builds
// the log-derivative argument in finalize.
type rangeChecker struct {
	api     frontend.API
	keys    []frontend.Variable
	commits []frontend.Variable
	done    bool
}

func newRangeChecker(api frontend.API) *rangeChecker { return &rangeChecker{api: api} }

// commit adds wires that looked-up values depend on to the commitment that
// seeds the lookup challenge.
func (rc *rangeChecker) commit(v ...frontend.Variable) { rc.commits = append(rc.commits, v...) }

// check asserts 0 <= v < 2^w for w <= 8. v must be a wire or a linear
// combination of committed wires (or of wires those determine).
func (rc *rangeChecker) check(v frontend.Variable, w int) {
	if w < 1 || w > tableMaxBits {
		panic(fmt.Sprintf("rangecheck: width %d", w))
	}
	rc.keys = append(rc.keys, rc.api.Add(v, 256*w))
}

// decompose splits v into little-endian fields of the given widths, each
// range-checked in 8-bit limbs, and returns the fields. The lowest limb is
// not a new wire but v minus the other limbs, which saves the equality
// constraint. The widths must sum to fewer than 253 bits so that the split
// is unique. The returned fields are linear combinations of limbs.
func (rc *rangeChecker) decompose(v frontend.Variable, widths []int) []frontend.Variable {
	var limbW []int
	var owner []int
	total := 0
	for f, w := range widths {
		for _, lw := range limbWidths(w) {
			limbW = append(limbW, lw)
			owner = append(owner, f)
		}
		total += w
	}
	if total > MaxSlotBits || len(limbW) == 0 {
		panic(fmt.Sprintf("decompose: %d bits", total))
	}
	limbs := make([]frontend.Variable, len(limbW))
	var rest []frontend.Variable
	if len(limbW) > 1 {
		args := []frontend.Variable{v, limbW[0]}
		for _, w := range limbW[1:] {
			args = append(args, w)
		}
		var err error
		rest, err = rc.api.Compiler().NewHint(decomposeHint, len(limbW)-1, args...)
		if err != nil {
			panic(err)
		}
		rc.commit(rest...)
	}
	low := v
	pos := limbW[0]
	for i, l := range rest {
		low = rc.api.Sub(low, rc.api.Mul(l, new(big.Int).Lsh(big.NewInt(1), uint(pos))))
		limbs[i+1] = l
		pos += limbW[i+1]
	}
	limbs[0] = low
	for i, l := range limbs {
		rc.check(l, limbW[i])
	}
	fields := make([]frontend.Variable, len(widths))
	shift := make([]int, len(widths))
	for i := range fields {
		fields[i] = 0
	}
	for i, l := range limbs {
		f := owner[i]
		fields[f] = rc.api.Add(fields[f], rc.api.Mul(l, new(big.Int).Lsh(big.NewInt(1), uint(shift[f]))))
		shift[f] += limbW[i]
	}
	return fields
}

// finalize builds the lookup argument. Call it once, at the end of Define.
func (rc *rangeChecker) finalize() {
	if rc.done || len(rc.keys) == 0 {
		return
	}
	rc.done = true
	api := rc.api
	var table []frontend.Variable
	for w := 1; w <= tableMaxBits; w++ {
		for t := 0; t < 1<<w; t++ {
			table = append(table, t+256*w)
		}
	}
	hintIn := make([]frontend.Variable, 0, 1+len(table)+len(rc.keys))
	hintIn = append(hintIn, len(table))
	hintIn = append(hintIn, table...)
	hintIn = append(hintIn, rc.keys...)
	mult, err := api.Compiler().NewHint(multiplicityHint, len(table), hintIn...)
	if err != nil {
		panic(err)
	}
	committed := append(append([]frontend.Variable{}, rc.commits...), mult...)
	keys := rc.keys
	multicommit.WithCommitment(api, func(api frontend.API, x frontend.Variable) error {
		lhs := make([]frontend.Variable, len(keys))
		for i, k := range keys {
			lhs[i] = api.Inverse(api.Sub(x, k))
		}
		rhs := make([]frontend.Variable, len(table))
		for i, t := range table {
			rhs[i] = api.Div(mult[i], api.Sub(x, t))
		}
		api.AssertIsEqual(sum(api, lhs), sum(api, rhs))
		return nil
	}, committed...)
}

func sum(api frontend.API, v []frontend.Variable) frontend.Variable {
	switch len(v) {
	case 0:
		return 0
	case 1:
		return v[0]
	}
	return api.Add(v[0], v[1], v[2:]...)
}

// materialize turns a linear combination into one wire (one constraint).
func materialize(api frontend.API, lc frontend.Variable) frontend.Variable {
	out, err := api.Compiler().NewHint(identityHint, 1, lc)
	if err != nil {
		panic(err)
	}
	api.AssertIsEqual(out[0], lc)
	return out[0]
}
