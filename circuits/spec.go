package circuits

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// MaxSlotBits bounds the bits of one packed accumulator (the sum of the
// slot widths of the rows that share a multiplication). 2^252 < p/2, so a
// sum of range-checked slots never wraps around the BN254 scalar field and
// its split into slots is unique.
const MaxSlotBits = 252

// LayerSpec is the public description of one layer: what the circuit is
// built from. It holds no weight, only the architecture and the interval
// [AccLo, AccHi] that the layer's accumulators can reach (rounded outwards
// to 4 significant bits, so that it reveals little about the weights).
type LayerSpec struct {
	Kind       model.Kind
	In, Out    int
	WeightBits int
	BiasBits   int
	Shift      int
	AccLo      int64
	AccHi      int64
}

// Spec is the public architecture descriptor of a model: the circuit, the
// keys and the commitment are all bound to it.
type Spec struct {
	Layers  []LayerSpec
	Classes int
}

// roundOut rounds v away from zero to 4 significant bits.
func roundOut(v int64) int64 {
	neg := v < 0
	a := v
	if neg {
		a = -a
	}
	if n := bits.Len64(uint64(a)); n > 4 {
		unit := int64(1) << (n - 4)
		a = (a + unit - 1) / unit * unit
	}
	if neg {
		return -a
	}
	return a
}

// SpecOf derives the descriptor of m. The accumulator intervals come from
// model.Bounds, which holds over every image in [0,255]^784, so any image
// can be proven.
func SpecOf(m *model.Model) (*Spec, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	bounds := m.Bounds()
	s := &Spec{Classes: m.Classes}
	for i, l := range m.Layers {
		ls := LayerSpec{Kind: l.Kind, In: l.In, Out: l.Out, WeightBits: l.WeightBits, BiasBits: l.BiasBits, Shift: l.Shift}
		lo, hi := int64(0), int64(0)
		for _, iv := range bounds[i].Acc {
			lo = min(lo, iv.Lo)
			hi = max(hi, iv.Hi)
		}
		ls.AccLo, ls.AccHi = roundOut(lo), roundOut(hi)
		s.Layers = append(s.Layers, ls)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks that every layer's slots fit the field.
func (s *Spec) validate() error {
	if len(s.Layers) == 0 {
		return errors.New("spec: no layers")
	}
	in := pixels.Count
	for i, l := range s.Layers {
		if l.In != in {
			return fmt.Errorf("spec: layer %d: input size %d, want %d", i, l.In, in)
		}
		if l.AccLo > 0 || l.AccHi < 0 || l.AccLo < -(1<<60) || l.AccHi > 1<<60 {
			return fmt.Errorf("spec: layer %d: accumulator interval [%d, %d] invalid", i, l.AccLo, l.AccHi)
		}
		lay := l.layout()
		if lay.slot > MaxSlotBits {
			return fmt.Errorf("spec: layer %d: a slot needs %d bits", i, lay.slot)
		}
		if l.Kind == model.KindDense && (l.WeightBits < 2 || l.WeightBits > 16 || l.BiasBits < 1 || l.BiasBits > 48) {
			return fmt.Errorf("spec: layer %d: bad bit widths", i)
		}
		in = l.Out
	}
	if in != s.Classes {
		return fmt.Errorf("spec: %d outputs, %d classes", in, s.Classes)
	}
	return nil
}

// ID is the SHA-256 of the canonical encoding of the spec: it names the
// circuit (and so the keys) and is hashed into every commitment.
func (s *Spec) ID() [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "veil-circuit/v1 classes=%d layers=%d\n", s.Classes, len(s.Layers))
	for _, l := range s.Layers {
		fmt.Fprintf(h, "%s in=%d out=%d wbits=%d bbits=%d shift=%d acc=[%d,%d]\n",
			l.Kind, l.In, l.Out, l.WeightBits, l.BiasBits, l.Shift, l.AccLo, l.AccHi)
	}
	var id [32]byte
	copy(id[:], h.Sum(nil))
	return id
}

// Equal reports whether two specs are identical.
func (s *Spec) Equal(o *Spec) bool { return s.ID() == o.ID() }

// slotLayout says how one accumulator acc of a layer is split in the
// circuit. v = acc + off is non-negative for every acc in [AccLo, AccHi];
// v = hi·2^shift + lo with lo in [0, 2^shift) and hi in [0, 2^hiBits); the
// layer's output is hi - k. With off = 2^(shift-1) + k·2^shift this is
// exactly model's round half up: out = floor((acc + 2^(shift-1)) / 2^shift).
type slotLayout struct {
	shift  int   // bits of lo
	hiBits int   // bits of hi
	slot   int   // shift + hiBits
	k      int64 // out = hi - k
	off    int64 // v = acc + off
	rows   int   // rows packed in one multiplication (dense layers)
}

func (l *LayerSpec) layout() slotLayout {
	s := l.Shift
	var half int64
	if s > 0 {
		half = int64(1) << (s - 1)
	}
	// Smallest k >= 0 with AccLo + half + k·2^s >= 0.
	need := -(l.AccLo + half)
	var k int64
	if need > 0 {
		k = (need + (int64(1) << s) - 1) >> s
	}
	off := half + k<<s
	vmax := l.AccHi + off
	hiMax := vmax >> s
	lay := slotLayout{shift: s, hiBits: max(bits.Len64(uint64(hiMax)), 1), k: k, off: off}
	lay.slot = s + lay.hiBits
	lay.rows = max(MaxSlotBits/lay.slot, 1)
	return lay
}

// limbWidths splits a width into 8-bit limbs, little-endian.
func limbWidths(w int) []int {
	var out []int
	for w > 0 {
		out = append(out, min(w, 8))
		w -= 8
	}
	return out
}

// NumOutputs is the number of public output values per challenge.
func (s *Spec) NumOutputs() int { return s.Classes }
