package circuits

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Circuit is the statement "the model committed to by Commitment maps the
// images hashed into Digest to Outputs". Public: Commitment, Digest,
// Outputs (B rows of Classes values; a negative output y is the field
// element p-|y|). Secret: the salt, the weights and biases (unsigned:
// w + 2^(bits-1)), the images.
type Circuit struct {
	Commitment frontend.Variable     `gnark:",public"`
	Digest     frontend.Variable     `gnark:",public"`
	Outputs    [][]frontend.Variable `gnark:",public"`

	Salt    frontend.Variable
	Weights []frontend.Variable
	Biases  []frontend.Variable
	Images  [][]frontend.Variable

	spec *Spec
}

// NewCircuit allocates a circuit (or an assignment) for spec and a batch of
// the given size.
func NewCircuit(spec *Spec, batch int) *Circuit {
	c := &Circuit{spec: spec}
	nw, nb := 0, 0
	for _, l := range spec.Layers {
		if l.Kind == model.KindDense {
			nw += l.In * l.Out
			nb += l.Out
		}
	}
	c.Weights = make([]frontend.Variable, nw)
	c.Biases = make([]frontend.Variable, nb)
	c.Images = make([][]frontend.Variable, batch)
	c.Outputs = make([][]frontend.Variable, batch)
	for i := range c.Images {
		c.Images[i] = make([]frontend.Variable, pixels.Count)
		c.Outputs[i] = make([]frontend.Variable, spec.Classes)
	}
	return c
}

// Spec returns the descriptor the circuit was built from.
func (c *Circuit) Spec() *Spec { return c.spec }

func pow2(n int) *big.Int { return new(big.Int).Lsh(big.NewInt(1), uint(n)) }

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	s := c.spec
	if s == nil {
		return fmt.Errorf("circuit: no spec (use NewCircuit)")
	}
	rc := newRangeChecker(api)

	// 1. Weights and biases: range checks (they make the packing below
	//    injective, which binding needs) and the commitment.
	var wWidths, bWidths []int
	wi, bi := 0, 0
	type denseParams struct{ w0, b0 int }
	dense := make([]denseParams, len(s.Layers))
	for li, l := range s.Layers {
		if l.Kind != model.KindDense {
			continue
		}
		dense[li] = denseParams{wi, bi}
		for k := 0; k < l.In*l.Out; k++ {
			u := c.Weights[wi]
			rc.commit(u)
			if l.WeightBits <= tableMaxBits {
				rc.check(u, l.WeightBits)
			} else {
				rc.decompose(u, []int{l.WeightBits})
			}
			wWidths = append(wWidths, l.WeightBits)
			wi++
		}
		for k := 0; k < l.Out; k++ {
			rc.commit(c.Biases[bi])
			rc.decompose(c.Biases[bi], []int{l.BiasBits})
			bWidths = append(bWidths, l.BiasBits)
			bi++
		}
	}
	se := specElement(s)
	in := []frontend.Variable{se.BigInt(new(big.Int)), c.Salt}
	in = append(in, packCircuit(api, c.Weights, wWidths)...)
	in = append(in, packCircuit(api, c.Biases, bWidths)...)
	com, err := circuitSponge(api, DomainCommitment, in)
	if err != nil {
		return err
	}
	api.AssertIsEqual(com, c.Commitment)

	// 2. Challenge images: 8-bit pixels and the digest.
	var din []frontend.Variable
	pw := pixelWidths()
	for _, img := range c.Images {
		for _, p := range img {
			rc.commit(p)
			rc.check(p, model.InputBits)
		}
		din = append(din, packCircuit(api, img, pw)...)
	}
	dig, err := circuitSponge(api, DomainDigest, din)
	if err != nil {
		return err
	}
	api.AssertIsEqual(dig, c.Digest)

	// 3. The network on every image. For a dense layer, the weights of up
	//    to lay.rows output rows are packed into one multiplier per input,
	//    Q[g][j] = Σ_r w[r][j]·2^(slot·r), so one product x_j·Q[g][j] does
	//    lay.rows multiply-accumulates; the sum over j (plus biases and
	//    offsets) is split back into per-row slots v_r = acc_r + off with
	//    v_r = hi_r·2^shift + lo_r, all range-checked, and out_r = hi_r - k.
	//    Each v_r lies in [0, 2^slot) for every input in range, and the
	//    slots of a group fit in 252 bits, so the split is the true one.
	type packedLayer [][]frontend.Variable // [group][input]
	qs := make([]packedLayer, len(s.Layers))
	for li, l := range s.Layers {
		if l.Kind != model.KindDense {
			continue
		}
		lay := l.layout()
		half := pow2(l.WeightBits - 1)
		for r0 := 0; r0 < l.Out; r0 += lay.rows {
			r1 := min(r0+lay.rows, l.Out)
			q := make([]frontend.Variable, l.In)
			for j := 0; j < l.In; j++ {
				terms := make([]frontend.Variable, 0, r1-r0)
				for r := r0; r < r1; r++ {
					sh := pow2(lay.slot * (r - r0))
					w := api.Sub(c.Weights[dense[li].w0+r*l.In+j], half)
					terms = append(terms, api.Mul(w, sh))
				}
				// One wire per packed multiplier: the weights' large
				// coefficients then sit in a single constraint instead of
				// one per challenge, which makes the MPC's phase-2
				// initialisation ~10x cheaper for 1 extra constraint per
				// (group, input).
				q[j] = materialize(api, sum(api, terms))
			}
			qs[li] = append(qs[li], q)
		}
	}
	for b, img := range c.Images {
		x := img
		for li, l := range s.Layers {
			lay := l.layout()
			widths := make([]int, 0, 2)
			if lay.shift > 0 {
				widths = append(widths, lay.shift)
			}
			widths = append(widths, lay.hiBits)
			hiIdx := len(widths) - 1
			y := make([]frontend.Variable, l.Out)
			switch l.Kind {
			case model.KindDense:
				bhalf := pow2(l.BiasBits - 1)
				for g, q := range qs[li] {
					r0 := g * lay.rows
					r1 := min(r0+lay.rows, l.Out)
					prods := make([]frontend.Variable, 0, l.In+r1-r0)
					for j := 0; j < l.In; j++ {
						prods = append(prods, api.Mul(x[j], q[j]))
					}
					var gw []int
					for r := r0; r < r1; r++ {
						bias := api.Sub(c.Biases[dense[li].b0+r], bhalf)
						bias = api.Add(bias, lay.off)
						prods = append(prods, api.Mul(bias, pow2(lay.slot*(r-r0))))
						gw = append(gw, widths...)
					}
					fields := rc.decompose(sum(api, prods), gw)
					for r := r0; r < r1; r++ {
						y[r] = api.Sub(fields[(r-r0)*len(widths)+hiIdx], lay.k)
					}
				}
			case model.KindSquare:
				for i := range y {
					v := api.Add(api.Mul(x[i], x[i]), lay.off)
					fields := rc.decompose(v, widths)
					y[i] = api.Sub(fields[hiIdx], lay.k)
				}
			case model.KindPoly:
				// acc = Σ_k C_k·x^k·2^((d-k)·f), as model computes it:
				// one product per power above 1, the rest constants.
				f, d := s.frac(li-1), l.degree()
				for i := range y {
					pow := x[i]
					terms := []frontend.Variable{new(big.Int).Add(new(big.Int).Mul(big.NewInt(l.Coeffs[0]), pow2(d*f)), big.NewInt(lay.off))}
					for k := 1; k <= d; k++ {
						if k > 1 {
							pow = api.Mul(pow, x[i])
						}
						terms = append(terms, api.Mul(pow, new(big.Int).Mul(big.NewInt(l.Coeffs[k]), pow2((d-k)*f))))
					}
					fields := rc.decompose(sum(api, terms), widths)
					y[i] = api.Sub(fields[hiIdx], lay.k)
				}
			}
			x = y
		}
		for i := range x {
			api.AssertIsEqual(c.Outputs[b][i], x[i])
		}
	}
	rc.finalize()
	return nil
}

// packCircuit packs items (already range-checked to their widths) into
// single wires, as packNative does.
func packCircuit(api frontend.API, items []frontend.Variable, widths []int) []frontend.Variable {
	plan := packPlan(widths)
	out := make([]frontend.Variable, len(plan))
	for e, r := range plan {
		terms := make([]frontend.Variable, 0, r[1]-r[0])
		pos := 0
		for i := r[0]; i < r[1]; i++ {
			terms = append(terms, api.Mul(items[i], pow2(pos)))
			pos += widths[i]
		}
		out[e] = materialize(api, sum(api, terms))
	}
	return out
}
