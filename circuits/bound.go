package circuits

import "github.com/veil-project/veil/model"

// maxBound saturates MinConstraints far below int64 overflow.
const maxBound = int64(1) << 50

// MinConstraints is a lower bound on the number of constraints of the
// circuit of s at the given batch, from the spec alone: every weight,
// bias and challenge pixel is range-checked (at least one lookup query,
// one constraint, each); a dense layer multiplies every input by every
// packed row group (one constraint per product per image, and one per
// group and input to materialise the packed multiplier); a square layer
// squares every output per image and a polynomial layer range-checks
// every output per image. A ledger node compares it with the
// phase-1 domain before compiling a spec someone else sent: compiling is
// proportional to the circuit's size, so a spec far too big for the
// chain's phase 1 is refused for the cost of parsing it.
func (s *Spec) MinConstraints(batch int) int64 {
	b := int64(max(batch, 1))
	var n int64
	add := func(v int64) { n = min(n+min(v, maxBound), maxBound) }
	for i := range s.Layers {
		l := &s.Layers[i]
		in, out := int64(l.In), int64(l.Out)
		if i == 0 {
			add(b * in) // the challenge pixels
		}
		switch l.Kind {
		case model.KindDense:
			rows := int64(l.layout().rows)
			groups := (out + rows - 1) / rows
			add(in * out)              // weights
			add(out)                   // biases
			add((b + 1) * in * groups) // products and packed multipliers
		case model.KindSquare:
			add(b * out)
		case model.KindPoly:
			add(b * out) // every output's range check, per image
		}
	}
	return n
}
