package circuits

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

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
	WeightFrac int // fixed-point format: a weight w stands for w / 2^WeightFrac
	BiasBits   int
	Shift      int
	AccLo      int64
	AccHi      int64
	// Coeffs and CoefFrac are a poly layer's polynomial (model.Layer's):
	// public, like the square, because they are the activation function,
	// not weights.
	Coeffs   []int64
	CoefFrac int
}

// degree is a poly layer's degree.
func (l *LayerSpec) degree() int { return len(l.Coeffs) - 1 }

// Spec is the public descriptor of a committed model: the circuit, the
// keys and the commitment are all bound to it, and it is registered on the
// ledger so that every client derives from it (not from what a server
// says) how to read the scores: their fixed-point scale and how far a
// decrypted score may be from the proven one.
type Spec struct {
	Layers  []LayerSpec
	Classes int
	// InputFrac is the fraction bits of an input pixel (model.InputFrac).
	InputFrac int
	// Tolerance is the largest difference, in integer score units, that a
	// client accepts between a decrypted challenge score and the proven
	// one. An answer's class is guaranteed when its decrypted margin over
	// every other class exceeds 2·Tolerance.
	Tolerance int64
}

// DefaultToleranceFor is the tolerance SpecOf gives a model: half a unit
// of its real-valued scores (2^(OutputFrac-1) integer units). It covers the
// CKKS error, flooding included, and the fixed-point roundings the
// encrypted evaluation does not perform (at most 0.22 measured over the
// 10,000 MNIST test images for the default model, 0.19 for the compact
// one). A model whose scores are scaled down to make that half unit large
// compared with its margins gains nothing: clients see the margin against
// 2·Tolerance.
func DefaultToleranceFor(m *model.Model) int64 {
	f := m.OutputFrac()
	if f < 1 {
		return 1
	}
	return int64(1) << (f - 1)
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
	s := &Spec{Classes: m.Classes, InputFrac: model.InputFrac, Tolerance: DefaultToleranceFor(m)}
	for i, l := range m.Layers {
		ls := LayerSpec{Kind: l.Kind, In: l.In, Out: l.Out, WeightBits: l.WeightBits, WeightFrac: l.WeightFrac, BiasBits: l.BiasBits, Shift: l.Shift}
		if l.Kind == model.KindPoly {
			ls.Coeffs, ls.CoefFrac = append([]int64(nil), l.Coeffs...), l.CoefFrac
		}
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
		if l.Kind != model.KindPoly && (len(l.Coeffs) != 0 || l.CoefFrac != 0) {
			return fmt.Errorf("spec: layer %d: a %s layer has polynomial coefficients", i, l.Kind)
		}
		if l.Kind == model.KindPoly {
			if err := l.validatePoly(s.frac(i - 1)); err != nil {
				return fmt.Errorf("spec: layer %d: %w", i, err)
			}
		}
		in = l.Out
	}
	if in != s.Classes {
		return fmt.Errorf("spec: %d outputs, %d classes", in, s.Classes)
	}
	return nil
}

// maxCoeffBits bounds a poly coefficient (as model does).
const maxCoeffBits = 24

// validatePoly checks a poly layer whose inputs have inFrac fraction bits.
func (l *LayerSpec) validatePoly(inFrac int) error {
	switch d := l.degree(); {
	case l.In != l.Out || l.WeightBits != 0 || l.WeightFrac != 0 || l.BiasBits != 0:
		return errors.New("a poly layer has no weights and keeps its size")
	case d < 1 || d > model.MaxPolyDegree:
		return fmt.Errorf("%d coefficients, want 2 to %d", len(l.Coeffs), model.MaxPolyDegree+1)
	case l.CoefFrac < 0 || l.CoefFrac > 32:
		return fmt.Errorf("coefficient fraction %d out of range [0, 32]", l.CoefFrac)
	case inFrac < 0 || maxCoeffBits+d*inFrac > 60:
		return fmt.Errorf("inputs with %d fraction bits", inFrac)
	}
	for k, c := range l.Coeffs {
		if c <= -(1<<maxCoeffBits) || c >= 1<<maxCoeffBits {
			return fmt.Errorf("coefficient %d = %d out of range", k, c)
		}
	}
	return nil
}

// maxSpecLayers bounds the layers of a parsed spec.
const maxSpecLayers = 64

// Canonical is the spec's one encoding: the text that is registered on the
// ledger and whose SHA-256 is its ID.
func (s *Spec) Canonical() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "veil-spec/v2 classes=%d input_frac=%d tolerance=%d layers=%d\n", s.Classes, s.InputFrac, s.Tolerance, len(s.Layers))
	for _, l := range s.Layers {
		fmt.Fprintf(&b, "%s in=%d out=%d wbits=%d wfrac=%d bbits=%d shift=%d acc=[%d,%d]",
			l.Kind, l.In, l.Out, l.WeightBits, l.WeightFrac, l.BiasBits, l.Shift, l.AccLo, l.AccHi)
		if l.Kind == model.KindPoly {
			cs := make([]string, len(l.Coeffs))
			for k, c := range l.Coeffs {
				cs[k] = strconv.FormatInt(c, 10)
			}
			fmt.Fprintf(&b, " coeffs=%s cfrac=%d", strings.Join(cs, ","), l.CoefFrac)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ParseSpec decodes a canonical spec and validates it. Anything but the
// exact canonical text of a valid spec is an error, so a registered spec
// has one meaning and one ID.
func ParseSpec(data []byte) (*Spec, error) {
	lines := strings.Split(string(data), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" {
		return nil, errors.New("spec: not newline-terminated lines")
	}
	s := &Spec{}
	var n int
	if _, err := fmt.Sscanf(lines[0], "veil-spec/v2 classes=%d input_frac=%d tolerance=%d layers=%d", &s.Classes, &s.InputFrac, &s.Tolerance, &n); err != nil {
		return nil, fmt.Errorf("spec header: %w", err)
	}
	if n < 1 || n > maxSpecLayers || len(lines) != n+2 {
		return nil, fmt.Errorf("spec: %d layers announced, %d lines", n, len(lines)-2)
	}
	if s.Classes < 1 || s.Classes > 1024 || s.InputFrac < 0 || s.InputFrac > 32 || s.Tolerance < 1 || s.Tolerance > 1<<60 {
		return nil, errors.New("spec: classes, input fraction or tolerance out of range")
	}
	for i := 0; i < n; i++ {
		var l LayerSpec
		var kind string
		line := lines[i+1]
		var coeffs string
		if strings.HasPrefix(line, string(model.KindPoly)+" ") {
			if _, err := fmt.Sscanf(line, "%s in=%d out=%d wbits=%d wfrac=%d bbits=%d shift=%d acc=[%d,%d] coeffs=%s cfrac=%d",
				&kind, &l.In, &l.Out, &l.WeightBits, &l.WeightFrac, &l.BiasBits, &l.Shift, &l.AccLo, &l.AccHi, &coeffs, &l.CoefFrac); err != nil {
				return nil, fmt.Errorf("spec layer %d: %w", i, err)
			}
			parts := strings.Split(coeffs, ",")
			if len(parts) > model.MaxPolyDegree+1 {
				return nil, fmt.Errorf("spec layer %d: %d coefficients", i, len(parts))
			}
			for _, p := range parts {
				c, err := strconv.ParseInt(p, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("spec layer %d: coefficient %q: %w", i, p, err)
				}
				l.Coeffs = append(l.Coeffs, c)
			}
		} else if _, err := fmt.Sscanf(line, "%s in=%d out=%d wbits=%d wfrac=%d bbits=%d shift=%d acc=[%d,%d]",
			&kind, &l.In, &l.Out, &l.WeightBits, &l.WeightFrac, &l.BiasBits, &l.Shift, &l.AccLo, &l.AccHi); err != nil {
			return nil, fmt.Errorf("spec layer %d: %w", i, err)
		}
		l.Kind = model.Kind(kind)
		switch {
		case l.Kind != model.KindDense && l.Kind != model.KindSquare && l.Kind != model.KindPoly:
			return nil, fmt.Errorf("spec layer %d: unknown kind %q", i, kind)
		case l.Out < 1 || l.Out > 1<<16 || l.Shift < 0 || l.Shift > 48 || l.WeightFrac < 0 || l.WeightFrac > 32:
			return nil, fmt.Errorf("spec layer %d: size, shift or weight fraction out of range", i)
		case l.Kind == model.KindSquare && (l.In != l.Out || l.WeightBits != 0 || l.WeightFrac != 0 || l.BiasBits != 0):
			return nil, fmt.Errorf("spec layer %d: a square layer has no weights and keeps its size", i)
		}
		s.Layers = append(s.Layers, l)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(s.Canonical(), data) {
		return nil, errors.New("spec: not in canonical form")
	}
	return s, nil
}

// ID is the SHA-256 of the canonical encoding of the spec: it names the
// circuit (and so the keys) and is hashed into every commitment.
func (s *Spec) ID() [32]byte { return sha256.Sum256(s.Canonical()) }

// OutputFrac is the fraction bits of the scores: an integer score y stands
// for the real value y / 2^OutputFrac.
func (s *Spec) OutputFrac() int { return s.frac(len(s.Layers) - 1) }

// frac is the fraction bits of layer i's output (i = -1: the input).
func (s *Spec) frac(i int) int {
	f := s.InputFrac
	for _, l := range s.Layers[:i+1] {
		switch l.Kind {
		case model.KindDense:
			f += l.WeightFrac
		case model.KindSquare:
			f *= 2
		case model.KindPoly:
			f = l.CoefFrac + l.degree()*f
		}
		f -= l.Shift
	}
	return f
}

// Architecture is the spec's layer shapes, as model describes them (what
// an encrypted evaluation's slot layout depends on).
func (s *Spec) Architecture() model.Architecture {
	a := make(model.Architecture, len(s.Layers))
	for i, l := range s.Layers {
		a[i] = model.LayerSpec{Kind: l.Kind}
		if l.Kind == model.KindDense {
			a[i].Out = l.Out
		}
		if l.Kind == model.KindPoly {
			a[i].Degree = l.degree()
		}
	}
	return a
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
