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
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// A general network is any sequence of dense layers, square activations
// and polynomial activations of degree at most 2. Compiled for CKKS it is
// a chain of affine maps with one square between consecutive ones:
//
//   - consecutive dense layers compose into one matrix;
//   - a degree-1 polynomial is affine and composes too;
//   - a degree-2 polynomial a·z² + b·z + c is a·(z + b/2a)² + c - b²/4a:
//     the affine map before it absorbs √|a| and the shift b/2a, the one
//     after it absorbs the sign of a and the constant, so the activation
//     costs one ciphertext square, like x².
//
// Each square consumes one level; the matrix products do not rescale (the
// weights' scale is removed by the rescale after the square), so a network
// with L activations needs L+1 ciphertext primes.
//
// Slots: every image has a block of BlockSize slots, its pixels at the
// block's slots 0..783; each affine map reads its inputs at slots
// 0..Cols-1 of the block and writes its outputs at slots 0..Rows-1. A
// hidden map uses the hybrid diagonal method: R = Rows rounded up to a
// power of two diagonals (rotations -R..-1, baby-step giant-step with
// hoisted baby steps), whose products hold R-row partial sums at slots
// r + R·t, then log2(T) rotate-and-add steps. The other slots of the block
// hold partial sums (garbage) that the next map multiplies by zero. The
// last map uses the plain diagonal method (one diagonal per column offset,
// no rotate-and-add), so the result holds the scores and, elsewhere,
// zeros: nothing of the hidden units.

// GeneralOptions control the compilation of a general network.
type GeneralOptions struct {
	// Probe are images whose slot values (garbage slots included) bound
	// the magnitudes the parameters must hold; a margin of ProbeMarginBits
	// is added. They should look like the inputs to be served (e.g. a few
	// training images).
	Probe [][]uint8
	// MaxLogN bounds the ring degree the parameter search may choose
	// (0: 14). Larger rings hold deeper networks but cost more per
	// operation and per key.
	MaxLogN int
	// Workers is the number of goroutines one evaluation uses (0: 2).
	Workers int
	// LogBSGSRatio is log2 of the giant-step to baby-step ratio (0: 3,
	// which needed the fewest rotation keys, 31, and the least time for
	// the HE.org workload's 784-128-64-10: 35 keys at 1 and 2, 43 at 4).
	LogBSGSRatio int
	// Literal, when set, are the parameters to use instead of searching
	// them (e.g. those already announced for the model): the network must
	// fit them (levels, block size, magnitudes), or compilation fails.
	Literal *ParametersLiteral
	// FloodBits sets the flooding noise added to results: σ =
	// 2^(log2(result scale) - FloodBits); 0 means 20, negative disables
	// flooding.
	FloodBits int
}

// ProbeMarginBits is the headroom above the largest value seen on the
// probes: inputs unlike the probes may exceed them by this factor (16)
// before the modulus wraps.
const ProbeMarginBits = 4

// keySwitchingLogP is the key-switching prime: one prime as large as the
// largest ciphertext prime keeps the key-switching noise near √N·σ.
const keySwitchingLogP = 60

// minPrecisionBits is the least precision (bits below the scale, after
// key-switching and encoding noise) the parameter search accepts.
const minPrecisionBits = 10

// GeneralNetwork is a general network compiled for encrypted evaluation
// under parameters chosen for it.
type GeneralNetwork struct {
	params  *Parameters
	layout  Layout
	stages  []*genStage
	galEls  []uint64
	workers int
	// logFlood is log2 of the flooding σ (0: none).
	logFlood float64
	plan     Plan
	// noRerandomize skips the re-randomisation (tests of the noise only).
	noRerandomize bool
}

// Plan records how the parameters were chosen, for reports.
type Plan struct {
	Activations int // squares (one level each)
	LogScale    int // log2 of the ciphertext scale entering each matrix
	LogWeight   int // log2 of the diagonals' scale
	// PrecisionBits is the planned precision: the smaller of the scale's
	// bits above the key-switching noise and the weights' bits above
	// their encoding error.
	PrecisionBits int
	// LogMagnitudes are log2 of the largest value before each square on
	// the probes (margin included), then of the largest score.
	LogMagnitudes []float64
	// ErrorBound is the stated bound on |decrypted score - float score|
	// (the float network is the dequantised model, which the fixed-point
	// model equals up to its roundings): the largest score on the probes
	// times 2^(activations + 5 - precision). Each square doubles the
	// relative error; the other 2^5 covers the fan-in of the sums of
	// noisy terms. It is a calibrated estimate, not a proof: on the random
	// networks of the tests the measured errors are 3 to 10 times smaller.
	ErrorBound float64
	Diagonals  []int // per matrix
	Security   int   // bits, by the HE standard's table
}

// genStage is one affine map.
type genStage struct {
	rows, cols int
	hybrid     bool
	r          int   // hybrid: rows rounded up to a power of two
	steps      []int // hybrid: rotate-and-add steps
	entries    []genEntry
	bias       []float64 // rows
	square     bool      // a square follows
	level      int
	lt         splitTransform
	biasPt     *rlwe.Plaintext
	diags      int
}

// genEntry is one weight on a diagonal: out[j] += w·in[j+diag], in
// block-relative slots.
type genEntry struct {
	j, diag int32
	w       float64
}

// FoldGeneral turns a model into affine maps with a square between
// consecutive ones (see the comment at the top of this file).
func FoldGeneral(m *model.Model) ([]Affine, error) {
	f := m.Dequantize()
	var maps []Affine
	var cur *Affine
	width := pixels.Count
	for i, l := range f.Layers {
		switch l.Kind {
		case model.KindDense:
			a := Affine{Rows: l.Out, Cols: l.In, W: slices.Clone(l.W), B: slices.Clone(l.B)}
			if cur != nil {
				a = cur.then(a)
			}
			cur = &a
		case model.KindSquare, model.KindPoly:
			c := []float64{0, 0, 1}
			if l.Kind == model.KindPoly {
				c = slices.Clone(l.Coeffs)
			}
			for len(c) > 1 && c[len(c)-1] == 0 {
				c = c[:len(c)-1]
			}
			if len(c) > 3 {
				return nil, fmt.Errorf("layer %d: a degree-%d activation needs two levels; the encrypted evaluation supports degree 2 at most", i, len(c)-1)
			}
			if cur == nil {
				id := identity(width)
				cur = &id
			}
			if len(c) < 3 {
				// Affine: p(z) = c0 + c1·z composes into the map.
				c = append(c, 0, 0)[:3]
				post := diagonalAffine(width, c[1], c[0])
				a := cur.then(post)
				cur = &a
				break
			}
			a, b, k := c[2], c[1], c[0]
			s := math.Sqrt(math.Abs(a))
			pre := diagonalAffine(width, s, s*b/(2*a))
			sq := cur.then(pre)
			maps = append(maps, sq)
			sign := 1.0
			if a < 0 {
				sign = -1
			}
			post := diagonalAffine(width, sign, k-b*b/(4*a))
			cur = &post
		default:
			return nil, fmt.Errorf("layer %d: unknown kind %q", i, l.Kind)
		}
		width = l.Out
	}
	if cur == nil {
		return nil, errors.New("the network ends with an activation")
	}
	return append(maps, *cur), nil
}

func identity(n int) Affine { return diagonalAffine(n, 1, 0) }

// diagonalAffine is y_i = s·x_i + t.
func diagonalAffine(n int, s, t float64) Affine {
	a := Affine{Rows: n, Cols: n, W: make([]float64, n*n), B: make([]float64, n)}
	for i := 0; i < n; i++ {
		a.W[i*n+i] = s
		a.B[i] = t
	}
	return a
}

// CompileGeneral chooses CKKS parameters for a general network (ring
// degree, primes and scales, at 128-bit security by the HE standard's
// table) and encodes its matrices. It refuses, with an error saying why, a
// network that no parameters up to MaxLogN hold.
func CompileGeneral(m *model.Model, o GeneralOptions) (*GeneralNetwork, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	if len(o.Probe) == 0 {
		return nil, fmt.Errorf("compile %s: no probe images to bound the values", m.Name)
	}
	for i, p := range o.Probe {
		if len(p) != pixels.Count {
			return nil, fmt.Errorf("compile %s: probe image %d has %d pixels, want %d", m.Name, i, len(p), pixels.Count)
		}
	}
	if o.MaxLogN == 0 {
		o.MaxLogN = 14
	}
	if o.MaxLogN < minLogN || o.MaxLogN > maxLogN {
		return nil, fmt.Errorf("compile %s: MaxLogN %d out of range [%d, %d]", m.Name, o.MaxLogN, minLogN, maxLogN)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.LogBSGSRatio == 0 {
		o.LogBSGSRatio = 3
	}
	if o.LogBSGSRatio < 0 || o.LogBSGSRatio > 8 {
		return nil, fmt.Errorf("compile %s: LogBSGSRatio %d out of range [1, 8]", m.Name, o.LogBSGSRatio)
	}
	if o.FloodBits == 0 {
		o.FloodBits = 20
	}
	maps, err := FoldGeneral(m)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	// Block size: the smallest power of two (>= 1024) that every map's
	// layout fits.
	stages := make([]*genStage, len(maps))
	dims := make([]mapDims, len(maps))
	for k, a := range maps {
		dims[k] = mapDims{rows: a.Rows, cols: a.Cols, hybrid: k < len(maps)-1}
	}
	block := generalBlock(dims)
	for k, a := range maps {
		st := &genStage{rows: a.Rows, cols: a.Cols, bias: a.B, square: k < len(maps)-1, hybrid: k < len(maps)-1}
		if st.hybrid {
			st.r = nextPow2(a.Rows)
		}
		stages[k] = st
		for k, w := range a.W {
			r, c := k/a.Cols, k%a.Cols
			if w == 0 {
				continue
			}
			if st.hybrid {
				delta := c - r + st.r
				t, i := delta/st.r, delta%st.r
				st.entries = append(st.entries, genEntry{j: int32(r + st.r*t), diag: int32(i - st.r), w: w})
			} else {
				st.entries = append(st.entries, genEntry{j: int32(r), diag: int32(c - r), w: w})
			}
		}
		if st.hybrid {
			t := nextPow2((a.Cols-1+st.r)/st.r + 1)
			for s := st.r * t / 2; s >= st.r; s /= 2 {
				st.steps = append(st.steps, s)
			}
		}
	}
	if block > 1<<o.MaxLogN {
		return nil, fmt.Errorf("compile %s: a layer needs blocks of %d slots, more than the %d slots of N = 2^%d", m.Name, block, 1<<o.MaxLogN, o.MaxLogN)
	}
	L := len(maps) - 1
	// Magnitudes on the probes, simulated slot by slot (garbage included)
	// in the smallest ring that holds a block.
	mags := simulateMagnitudes(stages, block, max(block, 1<<13), o.Probe)
	for i := range mags {
		mags[i] = math.Log2(math.Max(mags[i], 1e-3)) + ProbeMarginBits
	}
	var plan Plan
	var lit ParametersLiteral
	if o.Literal != nil {
		plan, lit, err = fitLiteral(*o.Literal, L, mags, block)
	} else {
		plan, lit, err = choosePlan(L, mags, block, o.MaxLogN)
	}
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	c, err := NewParameters(lit)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	n := &GeneralNetwork{params: c, stages: stages, workers: o.Workers, plan: plan,
		layout: Layout{BlockSize: block, Blocks: lit.Blocks(), InputOffset: 0, Outputs: m.Classes}}
	if err := n.encode(o.LogBSGSRatio); err != nil {
		return nil, fmt.Errorf("compile %s: %w", m.Name, err)
	}
	if len(n.galEls) > MaxGaloisKeys {
		return nil, fmt.Errorf("compile %s: needs %d rotation keys, more than %d", m.Name, len(n.galEls), MaxGaloisKeys)
	}
	if o.FloodBits > 0 {
		n.logFlood = n.resultLogScale() - float64(o.FloodBits)
	}
	return n, nil
}

// mapDims is the shape of one affine map of a folded network.
type mapDims struct {
	rows, cols int
	hybrid     bool // a hidden map (hybrid diagonals, rotate-and-add)
}

// generalBlock is the block size a general network's maps need: the
// smallest power of two, at least 1024, that holds every map's inputs,
// outputs and (hybrid maps) R·T partial sums.
func generalBlock(dims []mapDims) int {
	block := 1024
	for _, d := range dims {
		need := max(d.cols, d.rows)
		if d.hybrid {
			r := nextPow2(d.rows)
			t := (d.cols-1+r)/r + 1
			need = max(need, r*nextPow2(t))
		}
		block = max(block, nextPow2(need))
	}
	return block
}

// archDims folds an architecture's shapes as FoldGeneral folds a model:
// consecutive dense layers (and degree-1 activations) form one map; a
// square or an activation of degree 2 or more ends one.
func archDims(arch model.Architecture) ([]mapDims, int, error) {
	var dims []mapDims
	width, cols, open := pixels.Count, pixels.Count, false
	for i, l := range arch {
		switch {
		case l.Kind == model.KindDense:
			if !open {
				cols, open = width, true
			}
			width = l.Out
		case l.Kind == model.KindSquare || (l.Kind == model.KindPoly && l.Degree >= 2):
			if l.Degree > 2 {
				return nil, 0, fmt.Errorf("layer %d: a degree-%d activation needs two levels; the encrypted evaluation supports degree 2 at most", i, l.Degree)
			}
			if !open {
				cols = width
			}
			dims = append(dims, mapDims{rows: width, cols: cols, hybrid: true})
			open = false
		case l.Kind == model.KindPoly:
			if !open {
				cols, open = width, true
			}
		default:
			return nil, 0, fmt.Errorf("layer %d: unknown kind %q", i, l.Kind)
		}
	}
	if !open {
		return nil, 0, errors.New("the network ends with an activation")
	}
	return append(dims, mapDims{rows: width, cols: cols}), width, nil
}

// isDefaultShape reports whether the default he.Network evaluates arch:
// dense layers, one square, dense layers, no polynomial activation.
func isDefaultShape(arch model.Architecture) bool {
	squares := 0
	for _, l := range arch {
		switch l.Kind {
		case model.KindSquare:
			squares++
		case model.KindDense:
		default:
			return false
		}
	}
	return squares == 1 && len(arch) > 0 && arch[0].Kind == model.KindDense && arch[len(arch)-1].Kind == model.KindDense
}

// generalLayoutFor is the layout CompileGeneral gives a model of this
// architecture under these parameters.
func (c *Parameters) generalLayoutFor(arch model.Architecture) (Layout, error) {
	dims, outs, err := archDims(arch)
	if err != nil {
		return Layout{}, fmt.Errorf("layout: %w", err)
	}
	if b := generalBlock(dims); b != c.lit.BlockSize {
		return Layout{}, fmt.Errorf("layout: the network needs blocks of %d slots, the parameters have %d", b, c.lit.BlockSize)
	}
	return Layout{BlockSize: c.lit.BlockSize, Blocks: c.lit.Blocks(), InputOffset: 0, Outputs: outs}, nil
}

// choosePlan searches the ring degree, the scale S entering each matrix
// and the weights' scale w for the most precise parameters within the HE
// standard's 128-bit bound. With the lazy rescale, each activation's prime
// is 2(S+w) - S = S + 2w bits (the square of a product at scale S+w,
// rescaled back to S), and q0 holds the scores at scale S+w.
func choosePlan(L int, mags []float64, block, maxLogN int) (Plan, ParametersLiteral, error) {
	need := 0
	for logN := max(12, log2(block)); logN <= maxLogN; logN++ {
		budget := heStandardMaxLogQP[logN] - keySwitchingLogP
		best := -1
		var bestPlan Plan
		var bestLit ParametersLiteral
		for S := 20; S <= 50; S++ {
			for w := 12; w <= S; w++ {
				prec := min(S-9, w-5)
				q := S + 2*w
				q0 := S + w + int(math.Ceil(mags[L])) + 2
				if q > maxPrimeBits-1 || q0 > maxPrimeBits-1 || q0 < minPrimeBits || (L > 0 && q < minPrimeBits) {
					continue
				}
				logQ := []int{q0}
				for range L {
					logQ = append(logQ, q)
				}
				total := sum(logQ)
				if need == 0 || total+keySwitchingLogP < need {
					need = total + keySwitchingLogP
				}
				if total > budget || prec < minPrecisionBits || prec <= best {
					continue
				}
				// Each square's result, at scale 2(S+w), must stay below
				// its level's modulus.
				p, ok := planOf(L, mags, S, w, logQ)
				if !ok {
					continue
				}
				best = prec
				bestLit = ParametersLiteral{LogN: logN, LogQ: logQ, LogP: []int{keySwitchingLogP}, LogInputScale: S, BlockSize: block}
				bestPlan = p
			}
		}
		if best >= 0 {
			if _, err := bestLit.SecurityBits(); err != nil {
				return Plan{}, ParametersLiteral{}, err
			}
			return bestPlan, bestLit, nil
		}
	}
	return Plan{}, ParametersLiteral{}, fmt.Errorf("no CKKS parameters hold %d activations with %d bits of precision at 128-bit security up to N = 2^%d (log2(QP) of at least %d needed, the bound is %d)",
		L, minPrecisionBits, maxLogN, need, heStandardMaxLogQP[maxLogN])
}

// planOf checks that a chain (input and matrix scale S, weight scale w)
// holds the magnitudes and returns its plan.
func planOf(L int, mags []float64, S, w int, logQ []int) (Plan, bool) {
	if float64(logQ[0]) < float64(S+w)+mags[L]+1 {
		return Plan{}, false
	}
	for k := 0; k < L; k++ {
		if float64(sum(logQ[:L-k+1])) < float64(2*(S+w))+2*mags[k]+2 {
			return Plan{}, false
		}
	}
	prec := min(S-9, w-5)
	return Plan{Activations: L, LogScale: S, LogWeight: w, PrecisionBits: prec, LogMagnitudes: mags,
		ErrorBound: math.Exp2(mags[L] - ProbeMarginBits + float64(L) + 5 - float64(prec)), Security: 128}, true
}

// fitLiteral checks given parameters against the network and derives the
// weight scale from them: w = (q - S)/2 for the activation primes, or the
// most q0 leaves for a network without activation.
func fitLiteral(lit ParametersLiteral, L int, mags []float64, block int) (Plan, ParametersLiteral, error) {
	if _, err := lit.SecurityBits(); err != nil {
		return Plan{}, lit, fmt.Errorf("given parameters: %w", err)
	}
	if len(lit.LogQ) != L+1 || lit.BlockSize != block {
		return Plan{}, lit, fmt.Errorf("given parameters have %d ciphertext primes and blocks of %d slots; the network needs %d and %d", len(lit.LogQ), lit.BlockSize, L+1, block)
	}
	S := lit.LogInputScale
	w := lit.LogQ[0] - S - int(math.Ceil(mags[L])) - 2
	if L > 0 {
		w = (lit.LogQ[1] - S) / 2
	}
	for _, q := range lit.LogQ[1:] {
		if q != S+2*w {
			return Plan{}, lit, fmt.Errorf("given parameters: primes %v do not follow the scale 2^%d", lit.LogQ, S)
		}
	}
	p, ok := planOf(L, mags, S, w, lit.LogQ)
	if !ok || p.PrecisionBits < minPrecisionBits {
		return Plan{}, lit, fmt.Errorf("the network's values do not fit the given parameters %v", lit)
	}
	return p, lit, nil
}

func log2(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}

// simulateMagnitudes runs the slot program in float64 on the probes (one
// per block, cycled) and returns the largest absolute value over all
// slots before each square, then of the result.
func simulateMagnitudes(stages []*genStage, block, slots int, probe [][]uint8) []float64 {
	mags := make([]float64, len(stages))
	blocks := slots / block
	for start := 0; start < len(probe); start += blocks {
		x := make([]float64, slots)
		for b := 0; b < blocks; b++ {
			img := probe[(start+b)%len(probe)]
			for p, v := range img {
				x[b*block+p] = float64(v) / (1 << model.InputFrac)
			}
		}
		for k, st := range stages {
			y := make([]float64, slots)
			for b := 0; b < blocks; b++ {
				base := b * block
				for _, e := range st.entries {
					j := base + int(e.j)
					y[j] += e.w * x[((j+int(e.diag))%slots+slots)%slots]
				}
			}
			for _, s := range st.steps {
				r := slices.Clone(y)
				for j := range y {
					y[j] += r[(j+s)%slots]
				}
			}
			for b := 0; b < blocks; b++ {
				for r, v := range st.bias {
					y[b*block+r] += v
				}
			}
			for _, v := range y {
				mags[k] = math.Max(mags[k], math.Abs(v))
			}
			if st.square {
				for j, v := range y {
					y[j] = v * v
				}
			}
			x = y
		}
	}
	return mags
}

// encode builds the diagonals, biases and key list under the chosen
// parameters.
func (n *GeneralNetwork) encode(logRatio int) error {
	c := n.params
	cp := c.cp
	slots := c.lit.Slots()
	enc := ckks.NewEncoder(cp)
	wScale := rlwe.NewScale(math.Exp2(float64(n.plan.LogWeight)))
	scale := c.inputScale()
	set := map[uint64]bool{}
	level := c.MaxLevel()
	for k, st := range n.stages {
		d := lintrans.Diagonals[float64]{}
		bias := make([]float64, slots)
		for b := 0; b < n.layout.Blocks; b++ {
			base := b * n.layout.BlockSize
			for _, e := range st.entries {
				setDiag(d, int(e.diag), slots, base+int(e.j), e.w)
			}
			for r, v := range st.bias {
				bias[base+r] = v
			}
		}
		st.diags = len(d)
		n.plan.Diagonals = append(n.plan.Diagonals, len(d))
		st.level = level
		lt := lintrans.NewTransformation(cp, lintrans.Parameters{
			DiagonalsIndexList:        d.DiagonalsIndexList(),
			LevelQ:                    level,
			LevelP:                    cp.MaxLevelP(),
			Scale:                     wScale,
			LogDimensions:             cp.LogMaxDimensions(),
			LogBabyStepGiantStepRatio: logRatio,
		})
		if err := lintrans.Encode(enc, d, lt); err != nil {
			return fmt.Errorf("encode matrix %d: %w", k, err)
		}
		st.lt = newSplitTransform(common.LinearTransformation(lt), n.workers)
		for _, g := range st.lt.full.GaloisElements(cp) {
			set[g] = true
		}
		for _, s := range st.steps {
			set[c.rotationGaloisElement(s)] = true
		}
		scale = scale.Mul(wScale)
		var err error
		if st.biasPt, err = encodeVector(enc, c, level, scale, bias); err != nil {
			return fmt.Errorf("matrix %d: %w", k, err)
		}
		if st.square {
			scale = scale.Mul(scale).Div(rlwe.NewScale(cp.Q()[level]))
			level--
		}
	}
	// The identity (rotation by 0, Galois element 1) needs no key: the
	// giant step 0 is not rotated.
	delete(set, c.rotationGaloisElement(0))
	for g := range set {
		n.galEls = append(n.galEls, g)
	}
	slices.Sort(n.galEls)
	return nil
}

// resultLogScale is log2 of the result's scale.
func (n *GeneralNetwork) resultLogScale() float64 {
	return n.stages[len(n.stages)-1].biasPt.LogScale()
}

// Layout returns the slot layout clients must use.
func (n *GeneralNetwork) Layout() Layout { return n.layout }

// LogFloodSigma is log2 of the flooding σ added to results (0: none).
func (n *GeneralNetwork) LogFloodSigma() float64 { return n.logFlood }

// GaloisElements lists the rotation keys the evaluation needs, sorted.
func (n *GeneralNetwork) GaloisElements() []uint64 { return slices.Clone(n.galEls) }

// Parameters returns the parameters chosen for the network.
func (n *GeneralNetwork) Parameters() *Parameters { return n.params }

// Plan returns how the parameters were chosen.
func (n *GeneralNetwork) Plan() Plan {
	p := n.plan
	p.LogMagnitudes = slices.Clone(p.LogMagnitudes)
	p.Diagonals = slices.Clone(p.Diagonals)
	return p
}

// Evaluate runs the network on a client's ciphertext. It is safe to call
// concurrently.
func (n *GeneralNetwork) Evaluate(ctx context.Context, in *Ciphertext, keys *EvaluationKeys) (*Ciphertext, error) {
	return n.EvaluateTraced(ctx, in, keys, nil)
}

// EvaluateTraced is Evaluate, calling stage after each matrix ("matrixK"),
// square ("squareK") and the re-randomisation with its duration.
func (n *GeneralNetwork) EvaluateTraced(ctx context.Context, in *Ciphertext, keys *EvaluationKeys, stage func(name string, d time.Duration)) (*Ciphertext, error) {
	last := time.Now()
	mark := func(name string, k int) {
		if stage != nil {
			now := time.Now()
			stage(fmt.Sprintf("%s%d", name, k), now.Sub(last))
			last = now
		}
	}
	c := n.params
	if err := c.checkFreshInput(in, keys); err != nil {
		return nil, err
	}
	evs := keys.getEvaluators(n.workers)
	defer keys.putEvaluators(evs)
	eval := evs[0]
	ct := in.ct
	for k, st := range n.stages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out := ckks.NewCiphertext(c.cp, 1, st.level)
		if err := st.lt.evaluate(c.cp, evs, ct, out); err != nil {
			return nil, fmt.Errorf("evaluate matrix %d: %w", k, err)
		}
		tmp := ckks.NewCiphertext(c.cp, 1, st.level)
		for _, s := range st.steps {
			if err := eval.Rotate(out, s, tmp); err != nil {
				return nil, fmt.Errorf("matrix %d: rotate by %d: %w", k, s, err)
			}
			if err := eval.Add(out, tmp, out); err != nil {
				return nil, fmt.Errorf("matrix %d: %w", k, err)
			}
		}
		if err := eval.Add(out, st.biasPt, out); err != nil {
			return nil, fmt.Errorf("matrix %d: bias: %w", k, err)
		}
		mark("matrix", k)
		if st.square {
			if err := eval.MulRelin(out, out, out); err != nil {
				return nil, fmt.Errorf("square %d: %w", k, err)
			}
			if err := eval.Rescale(out, out); err != nil {
				return nil, fmt.Errorf("square %d: rescale: %w", k, err)
			}
			mark("square", k)
		}
		ct = out
	}
	if !n.noRerandomize {
		if err := rerandomizeWith(c, ct, keys, n.logFlood); err != nil {
			return nil, err
		}
	}
	mark("rerandomize", 0)
	return &Ciphertext{params: c, ct: ct}, nil
}
