package he

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tuneinsight/lattigo/v6/circuits/ckks/lintrans"
	common "github.com/tuneinsight/lattigo/v6/circuits/common/lintrans"
	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/ring"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"
	"github.com/tuneinsight/lattigo/v6/utils/sampling"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Layout tells a client where a network reads its input and writes its
// scores in each block of slots.
type Layout struct {
	BlockSize   int // slots per block
	Blocks      int // blocks per ciphertext
	InputOffset int // slot of pixel 0 within a block; pixel p is at InputOffset+p
	Outputs     int // the scores are at slots 0..Outputs-1 of each block
}

// Validate checks that a layout fits parameters: a client checks the
// layout a server announces before it places pixels or reads scores by it.
func (l Layout) Validate(p ParametersLiteral) error {
	switch {
	case l.BlockSize != p.BlockSize:
		return fmt.Errorf("layout: blocks of %d slots, the parameters have %d", l.BlockSize, p.BlockSize)
	case l.Blocks < 1 || l.Blocks > p.Blocks():
		return fmt.Errorf("layout: %d blocks, the parameters have %d", l.Blocks, p.Blocks())
	case l.InputOffset < 0 || l.InputOffset+pixels.Count > l.BlockSize:
		return fmt.Errorf("layout: %d pixels from slot %d do not fit a block of %d", pixels.Count, l.InputOffset, l.BlockSize)
	case l.Outputs < 1 || l.Outputs > l.BlockSize:
		return fmt.Errorf("layout: %d scores per block of %d slots", l.Outputs, l.BlockSize)
	}
	return nil
}

// Affine is a dense map y = W·x + b in float64, W Rows×Cols, row-major.
type Affine struct {
	Rows, Cols int
	W          []float64
	B          []float64
}

// then returns next∘a.
func (a Affine) then(next Affine) Affine {
	out := Affine{Rows: next.Rows, Cols: a.Cols, W: make([]float64, next.Rows*a.Cols), B: slices.Clone(next.B)}
	for i := 0; i < next.Rows; i++ {
		for k := 0; k < next.Cols; k++ {
			v := next.W[i*next.Cols+k]
			if v == 0 {
				continue
			}
			row := a.W[k*a.Cols : (k+1)*a.Cols]
			dst := out.W[i*a.Cols : (i+1)*a.Cols]
			for j, x := range row {
				dst[j] += v * x
			}
			out.B[i] += v * a.B[k]
		}
	}
	return out
}

// Fold turns a model of dense layers, one square activation and dense
// layers into the two affine maps around the square: consecutive dense
// layers compose into one matrix because nothing non-linear separates them.
// These are the matrices the encrypted evaluation applies (and that a
// benchmark peer must apply to compare like with like).
func Fold(m *model.Model) (first, last Affine, err error) {
	f := m.Dequantize()
	var cur *Affine
	squares := 0
	for _, l := range f.Layers {
		switch l.Kind {
		case model.KindDense:
			a := Affine{Rows: l.Out, Cols: l.In, W: l.W, B: l.B}
			if cur == nil {
				cur = &a
			} else {
				c := cur.then(a)
				cur = &c
			}
		case model.KindSquare:
			if squares > 0 {
				return first, last, errors.New("the encrypted evaluation supports one square activation (multiplicative depth 1)")
			}
			if cur == nil {
				return first, last, errors.New("the network must start with a dense layer")
			}
			squares++
			first, cur = *cur, nil
		default:
			return first, last, fmt.Errorf("the default evaluation has no %q layers (general networks: CompileGeneral)", l.Kind)
		}
	}
	if squares == 0 || cur == nil {
		return first, last, errors.New("the encrypted evaluation needs dense layers, one square activation, then dense layers")
	}
	return first, *cur, nil
}

// LayoutFor is the slot layout Compile gives a model of architecture arch
// under these parameters. A client computes it from the model's registered
// spec instead of taking the layout a server announces.
//
// A general network (see CompileGeneral) has its inputs at slot 0 of each
// block and blocks sized by its layers.
func (c *Parameters) LayoutFor(arch model.Architecture) (Layout, error) {
	if !isDefaultShape(arch) {
		return c.generalLayoutFor(arch)
	}
	hidden, out, squares, width := 0, 0, 0, pixels.Count
	for _, l := range arch {
		switch l.Kind {
		case model.KindDense:
			width = l.Out
		case model.KindSquare:
			squares++
			hidden = width
		default:
			return Layout{}, fmt.Errorf("layout: unknown layer kind %q", l.Kind)
		}
	}
	out = width
	if squares != 1 || hidden == 0 || out == 0 {
		return Layout{}, errors.New("layout: the encrypted evaluation needs dense layers, one square activation, then dense layers")
	}
	M1 := nextPow2(hidden)
	if M1+pixels.Count > c.lit.BlockSize {
		return Layout{}, fmt.Errorf("layout: %d hidden units padded to %d plus %d pixels do not fit a block of %d slots", hidden, M1, pixels.Count, c.lit.BlockSize)
	}
	return Layout{BlockSize: c.lit.BlockSize, Blocks: c.lit.Blocks(), InputOffset: M1, Outputs: out}, nil
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Network is a model compiled for encrypted evaluation: its matrices are
// encoded as plaintext diagonals once, and evaluated on any number of
// client ciphertexts concurrently.
type Network struct {
	params   *Parameters
	settings EvaluationSettings
	layout   Layout
	m1, m2   int // true output sizes of the two affine maps
	M1, M2   int // padded to powers of two
	lt1, lt2 splitTransform
	b1, b2   *rlwe.Plaintext
	sum1     []int // rotate-and-add steps of the first matrix
	galEls   []uint64
	// noRerandomize skips the re-randomisation (noise measurements only).
	noRerandomize bool
}

// Compile maps a model onto the slots and encodes its diagonals as the
// settings say.
func (c *Parameters) Compile(m *model.Model, s EvaluationSettings) (*Network, error) {
	return c.CompilePerBlock([]*model.Model{m}, s)
}

// CompilePerBlock compiles a network that evaluates models[b mod len(models)]
// in block b. The models must have the same shape. An honest server never
// needs it: Veil's protocol tests use it to play a server that runs another
// model on some blocks, which the hidden challenges must expose.
func (c *Parameters) CompilePerBlock(models []*model.Model, s EvaluationSettings) (*Network, error) {
	if len(models) == 0 {
		return nil, errors.New("compile: no model")
	}
	if err := s.Validate(c.lit); err != nil {
		return nil, fmt.Errorf("compile: evaluation settings: %w", err)
	}
	s.Workers = max(1, s.Workers)
	m := models[0]
	folded := make([][2]Affine, len(models))
	for i, mi := range models {
		if err := mi.Validate(); err != nil {
			return nil, fmt.Errorf("compile %s: %w", mi.Name, err)
		}
		first, last, err := Fold(mi)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", mi.Name, err)
		}
		if i > 0 && (first.Rows != folded[0][0].Rows || last.Rows != folded[0][1].Rows || first.Cols != folded[0][0].Cols) {
			return nil, fmt.Errorf("compile %s: shape differs from %s", mi.Name, m.Name)
		}
		folded[i] = [2]Affine{first, last}
	}
	first, last := folded[0][0], folded[0][1]
	B := c.lit.BlockSize
	n := &Network{params: c, settings: s, m1: first.Rows, m2: last.Rows, M1: nextPow2(first.Rows), M2: nextPow2(last.Rows)}
	if first.Cols != pixels.Count {
		return nil, fmt.Errorf("compile %s: first layer has %d inputs, want %d", m.Name, first.Cols, pixels.Count)
	}
	if n.M1+pixels.Count > B {
		return nil, fmt.Errorf("compile %s: %d hidden units padded to %d plus %d pixels do not fit a block of %d slots",
			m.Name, n.m1, n.M1, pixels.Count, B)
	}
	n.layout = Layout{BlockSize: B, Blocks: c.lit.Blocks(), InputOffset: n.M1, Outputs: n.m2}
	slots := c.lit.Slots()
	d1 := lintrans.Diagonals[float64]{}
	d2 := lintrans.Diagonals[float64]{}
	bias1 := make([]float64, slots)
	bias2 := make([]float64, slots)
	for b := 0; b < n.layout.Blocks; b++ {
		first, last := folded[b%len(folded)][0], folded[b%len(folded)][1]
		base := b * B
		// First matrix: out[r] = Σ_p W1[r][p]·x[M1+p]. Stage 1 computes, at
		// block slot j = r + M1·t, the partial sum over the columns c = j+i
		// for the M1 diagonals i; stage 2 adds the 1024/M1 partial sums of
		// each row.
		for r := 0; r < n.m1; r++ {
			for p := 0; p < pixels.Count; p++ {
				w := first.W[r*pixels.Count+p]
				if w == 0 {
					continue
				}
				delta := n.M1 + p - r // > 0
				t, i := delta/n.M1, delta%n.M1
				setDiag(d1, i, slots, base+r+n.M1*t, w)
			}
			bias1[base+r] = first.B[r]
		}
		// Last matrix: out[r] = Σ_c W2[r][c]·h[c], by the plain diagonal
		// method: diagonal δ = c-r holds W2[r][c] at slot r only. No
		// rotate-and-add follows, so every slot but the m2 scores of each
		// block is zero before flooding: the output reveals the scores and
		// nothing else (partial sums, hidden units) of the evaluation.
		for r := 0; r < n.m2; r++ {
			for col := 0; col < n.m1; col++ {
				if w := last.W[r*n.m1+col]; w != 0 {
					setDiag(d2, col-r, slots, base+r, w)
				}
			}
			bias2[base+r] = last.B[r]
		}
	}
	var err error
	level := c.MaxLevel()
	enc := ckks.NewEncoder(c.cp)
	wScale := rlwe.NewScale(float64(uint64(1) << s.LogWeightScale))
	oScale := rlwe.NewScale(float64(uint64(1) << s.LogOutputWeightScale))
	mk := func(d lintrans.Diagonals[float64], level int, scale rlwe.Scale, ratio int) (splitTransform, error) {
		lt := lintrans.NewTransformation(c.cp, lintrans.Parameters{
			DiagonalsIndexList:        d.DiagonalsIndexList(),
			LevelQ:                    level,
			LevelP:                    c.cp.MaxLevelP(),
			Scale:                     scale,
			LogDimensions:             c.cp.LogMaxDimensions(),
			LogBabyStepGiantStepRatio: ratio,
		})
		if err := lintrans.Encode(enc, d, lt); err != nil {
			return splitTransform{}, err
		}
		return newSplitTransform(common.LinearTransformation(lt), s.Workers), nil
	}
	if n.lt1, err = mk(d1, level, wScale, s.LogBSGSRatio); err != nil {
		return nil, fmt.Errorf("compile %s: encode first matrix: %w", m.Name, err)
	}
	if n.lt2, err = mk(d2, level-1, oScale, s.LogBSGSRatio); err != nil {
		return nil, fmt.Errorf("compile %s: encode last matrix: %w", m.Name, err)
	}
	// Biases, at the scale the ciphertext has when they are added.
	// The square is rescaled by q1 at once, so the last matrix and its
	// bias work at level 0, where rotations cost half as much.
	s1 := c.inputScale().Mul(wScale)
	s2 := s1.Mul(s1).Div(rlwe.NewScale(c.cp.Q()[level])).Mul(oScale)
	if n.b1, err = encodeVector(enc, c, level, s1, bias1); err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	if n.b2, err = encodeVector(enc, c, level-1, s2, bias2); err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	for s := B / 2; s >= n.M1; s /= 2 {
		n.sum1 = append(n.sum1, s)
	}
	set := map[uint64]bool{}
	for _, g := range n.lt1.full.GaloisElements(c.cp) {
		set[g] = true
	}
	for _, g := range n.lt2.full.GaloisElements(c.cp) {
		set[g] = true
	}
	for _, s := range n.sum1 {
		set[c.rotationGaloisElement(s)] = true
	}
	for g := range set {
		n.galEls = append(n.galEls, g)
	}
	slices.Sort(n.galEls)
	if len(n.galEls) > MaxGaloisKeys {
		return nil, fmt.Errorf("compile %s: needs %d rotation keys, more than %d", m.Name, len(n.galEls), MaxGaloisKeys)
	}
	return n, nil
}

// setDiag sets diagonal i (rotation by i, negative = right) at slot j.
func setDiag(d lintrans.Diagonals[float64], i, slots, j int, w float64) {
	if i < 0 {
		i += slots
	}
	v, ok := d[i]
	if !ok {
		v = make([]float64, slots)
		d[i] = v
	}
	v[j] = w
}

// encodeVector encodes a vector of slots at a given scale.
func encodeVector(enc *ckks.Encoder, c *Parameters, level int, scale rlwe.Scale, v []float64) (*rlwe.Plaintext, error) {
	pt := ckks.NewPlaintext(c.cp, level)
	pt.Scale = scale
	if err := enc.Encode(v, pt); err != nil {
		return nil, fmt.Errorf("encode bias: %w", err)
	}
	return pt, nil
}

// Layout returns the slot layout clients must use.
func (n *Network) Layout() Layout { return n.layout }

// GaloisElements lists the rotation keys the evaluation needs, sorted.
func (n *Network) GaloisElements() []uint64 { return slices.Clone(n.galEls) }

// Parameters returns the network's CKKS parameters.
func (n *Network) Parameters() *Parameters { return n.params }

// LogFloodSigma is log2 of the flooding σ added to results (0: none).
func (n *Network) LogFloodSigma() float64 { return n.settings.LogFloodSigma }

// Settings returns the settings the network evaluates with.
func (n *Network) Settings() EvaluationSettings { return n.settings }

// ErrInput is wrapped by errors about a client's ciphertext (wrong level or
// scale), as opposed to server faults.
var ErrInput = errors.New("unsuitable input ciphertext")

// Stages of an evaluation, reported to an EvaluateTraced callback.
const (
	StageMatrix1     = "matrix1"     // first matrix: baby-step giant-step diagonals
	StageSum1        = "sum1"        // first matrix: rotate-and-add, bias
	StageSquare      = "square"      // ciphertext multiplication and relinearisation
	StageRescale     = "rescale"     // the single rescale, after the square
	StageMatrix2     = "matrix2"     // last matrix: diagonals
	StageSum2        = "sum2"        // last matrix: bias
	StageRerandomize = "rerandomize" // encryption of zero and flooding noise
)

// Evaluate runs the network on a client's ciphertext with the client's
// keys, and returns the re-randomised result (see the package
// documentation). It is safe to call concurrently.
func (n *Network) Evaluate(ctx context.Context, in *Ciphertext, keys *EvaluationKeys) (*Ciphertext, error) {
	return n.EvaluateTraced(ctx, in, keys, nil)
}

// EvaluateTraced is Evaluate, calling stage after each stage with its
// duration (benchmarks use it for the per-layer breakdown).
func (n *Network) EvaluateTraced(ctx context.Context, in *Ciphertext, keys *EvaluationKeys, stage func(name string, d time.Duration)) (*Ciphertext, error) {
	last := time.Now()
	mark := func(name string) {
		if stage != nil {
			now := time.Now()
			stage(name, now.Sub(last))
			last = now
		}
	}
	c := n.params
	if err := c.checkFreshInput(in, keys); err != nil {
		return nil, err
	}
	evs := keys.getEvaluators(max(1, n.settings.Workers))
	defer keys.putEvaluators(evs)
	eval := evs[0]
	ct := ckks.NewCiphertext(c.cp, 1, c.MaxLevel())
	// First matrix, stage 1 (baby-step giant-step, hoisted baby steps).
	if err := n.lt1.evaluate(c.cp, evs, in.ct, ct); err != nil {
		return nil, fmt.Errorf("evaluate first matrix: %w", err)
	}
	mark(StageMatrix1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := n.rotateAndAdd(eval, ct, n.sum1); err != nil {
		return nil, fmt.Errorf("evaluate first matrix: %w", err)
	}
	if err := eval.Add(ct, n.b1, ct); err != nil {
		return nil, fmt.Errorf("add first bias: %w", err)
	}
	mark(StageSum1)
	// Square activation: one multiplication and relinearisation, then the
	// one rescale (drop q1): the last matrix runs at level 0.
	if err := eval.MulRelin(ct, ct, ct); err != nil {
		return nil, fmt.Errorf("square: %w", err)
	}
	mark(StageSquare)
	if err := eval.Rescale(ct, ct); err != nil {
		return nil, fmt.Errorf("rescale: %w", err)
	}
	mark(StageRescale)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := ckks.NewCiphertext(c.cp, 1, ct.Level())
	if err := n.lt2.evaluate(c.cp, evs, ct, out); err != nil {
		return nil, fmt.Errorf("evaluate last matrix: %w", err)
	}
	mark(StageMatrix2)
	if err := eval.Add(out, n.b2, out); err != nil {
		return nil, fmt.Errorf("add last bias: %w", err)
	}
	mark(StageSum2)
	if !n.noRerandomize {
		if err := n.rerandomize(out, keys); err != nil {
			return nil, err
		}
	}
	mark(StageRerandomize)
	return &Ciphertext{params: c, ct: out}, nil
}

// rotateAndAdd computes ct += rot_s(ct) for each step s.
func (n *Network) rotateAndAdd(eval *ckks.Evaluator, ct *rlwe.Ciphertext, steps []int) error {
	tmp := ckks.NewCiphertext(n.params.cp, 1, ct.Level())
	for _, s := range steps {
		if err := eval.Rotate(ct, s, tmp); err != nil {
			return fmt.Errorf("rotate by %d: %w", s, err)
		}
		if err := eval.Add(ct, tmp, ct); err != nil {
			return err
		}
	}
	return nil
}

// rerandomize adds a fresh public-key encryption of zero and flooding noise.
func (n *Network) rerandomize(ct *rlwe.Ciphertext, keys *EvaluationKeys) error {
	return rerandomizeWith(n.params, ct, keys, n.settings.LogFloodSigma)
}

// rerandomizeWith adds a fresh public-key encryption of zero and Gaussian
// flooding noise of σ = 2^logSigma (none when logSigma is 0).
func rerandomizeWith(c *Parameters, ct *rlwe.Ciphertext, keys *EvaluationKeys, logSigma float64) error {
	zero := ckks.NewCiphertext(c.cp, 1, ct.Level())
	if err := rlwe.NewEncryptor(c.cp, keys.pk).EncryptZero(zero); err != nil {
		return fmt.Errorf("re-randomise: %w", err)
	}
	ringQ := c.cp.RingQ().AtLevel(ct.Level())
	ringQ.Add(ct.Value[0], zero.Value[0], ct.Value[0])
	ringQ.Add(ct.Value[1], zero.Value[1], ct.Value[1])
	if logSigma == 0 {
		return nil
	}
	sigma := math.Exp2(logSigma)
	prng, err := sampling.NewPRNG()
	if err != nil {
		return fmt.Errorf("flooding: %w", err)
	}
	sampler, err := ring.NewSampler(prng, ringQ, ring.DiscreteGaussian{Sigma: sigma, Bound: 6 * sigma}, false)
	if err != nil {
		return fmt.Errorf("flooding: %w", err)
	}
	e := ringQ.NewPoly()
	sampler.Read(e)
	ringQ.NTT(e, e)
	ringQ.Add(ct.Value[0], e, ct.Value[0])
	return nil
}
