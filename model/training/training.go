package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Config controls training. Training is deterministic given Seed and
// the number of worker threads of the BLAS (results may differ in the last
// bits across machines).
type Config struct {
	Arch         model.Architecture
	Epochs       int
	BatchSize    int
	LearningRate float64 // Adam step size at the start; cosine decay to 2% of it
	WeightDecay  float64 // decoupled (AdamW) weight decay
	Seed         uint64
	Augment      bool // random small rotations, scalings, shears and shifts
	// Init, when set, is the network training starts from (its layers
	// must match Arch); otherwise the weights are drawn at random. A
	// federated data owner starts every round from the current model.
	Init *model.Float
	// Steps, when positive, is the number of mini-batches to run instead
	// of Epochs full passes (a federated round's local work).
	Steps int
	// ScheduleOffset and ScheduleTotal place this call's steps on a longer
	// cosine learning-rate schedule, so that federated rounds continue one
	// schedule; ScheduleTotal 0 means the schedule spans this call only.
	ScheduleOffset, ScheduleTotal int
	// DP, when set, trains with DP-SGD (Abadi et al., 2016): Poisson
	// sampling, per-example gradient clipping and Gaussian noise; see
	// DPSGD and DPEpsilon.
	DP *DPSGD
	// State, when set, carries the Adam moments and step count from one
	// call to the next (a federated owner's optimiser across rounds): it
	// is read at the start (if filled) and written at the end.
	State *AdamState
	// Control, when set, applies SCAFFOLD's drift correction (Karimireddy
	// et al., 2020): Offset (c - c_i, one slice per parameter in AdamState
	// order) is added to every clipped gradient, and MeanGradient receives
	// the mean clipped gradient of this call (the owner's next c_i).
	Control *Control
	// PolyWarmupSteps is the number of first mini-batches in which poly
	// layers are exact ReLUs; then each poly layer's polynomial is fitted
	// by least squares to ReLU on the range of its pre-activations (the
	// 0.1% and 99.9% quantiles on PolyFitImages training images) and
	// training continues with the polynomial. 0 means a tenth of the
	// steps. Poly layers of Init keep their coefficients (no warm-up).
	PolyWarmupSteps int
	// PolyRangePenalty weighs a quadratic penalty on pre-activations
	// outside the fitted range, which keeps them where the polynomial is
	// close to ReLU. 0 means 1.
	PolyRangePenalty float64
	// Progress is called after each batch with the number of batches done
	// and the total; it may be nil.
	Progress func(done, total int, loss float64)
}

// DefaultConfig returns the configuration of the committed default model.
func DefaultConfig() Config {
	return Config{
		Arch:         model.DefaultArchitecture,
		Epochs:       50,
		BatchSize:    128,
		LearningRate: 3e-3,
		WeightDecay:  1e-4,
		Seed:         1,
		Augment:      true,
	}
}

// AdamState is the optimiser state of a training run: the step count and
// the first and second moments of every dense layer's weights and biases,
// in layer order (weights, then biases).
type AdamState struct {
	Step int
	M, V [][]float64
}

// Control carries a SCAFFOLD correction into a training call and the mean
// gradient out of it.
type Control struct {
	Offset       [][]float64
	MeanGradient [][]float64
}

type param struct {
	w, m, v *mat.Dense
}

func newParam(r, c int) param {
	return param{w: mat.NewDense(r, c, nil), m: mat.NewDense(r, c, nil), v: mat.NewDense(r, c, nil)}
}

type trainLayer struct {
	spec    model.LayerSpec
	in, out int
	W, B    param // W is out×in, B is 1×out
	// Poly layers: the polynomial (nil while the layer is an exact ReLU,
	// during the warm-up) and its fit.
	coeffs []float64
	approx *model.Approximation
	// Saved by the forward pass for the backward pass.
	x, z *mat.Dense
	// Gradients.
	gW, gB *mat.Dense
}

// Train fits a float network on the training set with mini-batch Adam and
// softmax cross-entropy.
func Train(ctx context.Context, train *dataset.Set, cfg Config) (*model.Float, error) {
	if len(cfg.Arch) == 0 || cfg.Arch[len(cfg.Arch)-1].Kind != model.KindDense || cfg.Arch[len(cfg.Arch)-1].Out != 10 {
		return nil, errors.New("train: the last layer must be dense with 10 outputs")
	}
	if (cfg.Epochs <= 0 && cfg.Steps <= 0) || cfg.BatchSize <= 0 || cfg.LearningRate <= 0 {
		return nil, fmt.Errorf("train: epochs (or steps), batch size and learning rate must be positive (got %d, %d, %g)", cfg.Epochs, cfg.BatchSize, cfg.LearningRate)
	}
	if cfg.Steps < 0 || cfg.ScheduleOffset < 0 || cfg.ScheduleTotal < 0 {
		return nil, errors.New("train: steps and schedule positions must not be negative")
	}
	if err := cfg.DP.check(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if cfg.Init != nil {
		if err := matches(cfg.Init, cfg.Arch); err != nil {
			return nil, fmt.Errorf("train: initial network: %w", err)
		}
	}
	if train.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("train: %d images, fewer than a batch of %d", train.Len(), cfg.BatchSize)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7665696c))
	layers := make([]*trainLayer, len(cfg.Arch))
	in := pixels.Count
	for i, s := range cfg.Arch {
		out := s.Out
		if s.Kind != model.KindDense {
			out = in
		}
		l := &trainLayer{spec: s, in: in, out: out}
		if s.Kind == model.KindPoly && cfg.Init != nil {
			l.coeffs = append([]float64(nil), cfg.Init.Layers[i].Coeffs...)
			l.approx = cfg.Init.Layers[i].Approx
		}
		if s.Kind == model.KindDense {
			l.W, l.B = newParam(out, in), newParam(1, out)
			l.gW, l.gB = mat.NewDense(out, in, nil), mat.NewDense(1, out, nil)
			if cfg.Init != nil {
				copy(l.W.w.RawMatrix().Data, cfg.Init.Layers[i].W)
				copy(l.B.w.RawMatrix().Data, cfg.Init.Layers[i].B)
				layers[i] = l
				in = out
				continue
			}
			// Glorot-uniform initialisation, halved after a square layer's
			// input so that squares start small.
			lim := math.Sqrt(6 / float64(in+out))
			if i+1 < len(cfg.Arch) && cfg.Arch[i+1].Kind == model.KindSquare {
				lim /= 2
			}
			raw := l.W.w.RawMatrix().Data
			for k := range raw {
				raw[k] = (2*rng.Float64() - 1) * lim
			}
		}
		layers[i] = l
		in = out
	}
	n := train.Len()
	batches := n / cfg.BatchSize
	total := batches * cfg.Epochs
	epochs := cfg.Epochs
	if cfg.Steps > 0 {
		total = cfg.Steps
		epochs = (cfg.Steps + batches - 1) / batches
	}
	schedule := total
	if cfg.ScheduleTotal > 0 {
		schedule = cfg.ScheduleTotal
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	var params []param
	for _, l := range layers {
		if l.spec.Kind == model.KindDense {
			params = append(params, l.W, l.B)
		}
	}
	step0 := 0
	if st := cfg.State; st != nil && st.M != nil {
		if len(st.M) != len(params) || len(st.V) != len(params) {
			return nil, fmt.Errorf("train: optimiser state for %d parameters, the network has %d", len(st.M), len(params))
		}
		for i, p := range params {
			if len(st.M[i]) != len(p.m.RawMatrix().Data) || len(st.V[i]) != len(p.v.RawMatrix().Data) {
				return nil, fmt.Errorf("train: optimiser state of parameter %d has the wrong size", i)
			}
			copy(p.m.RawMatrix().Data, st.M[i])
			copy(p.v.RawMatrix().Data, st.V[i])
		}
		step0 = st.Step
	}
	var gradSum [][]float64
	if ctl := cfg.Control; ctl != nil {
		if ctl.Offset != nil && len(ctl.Offset) != len(params) {
			return nil, fmt.Errorf("train: drift correction for %d parameters, the network has %d", len(ctl.Offset), len(params))
		}
		gradSum = make([][]float64, len(params))
		for i, p := range params {
			n := len(p.w.RawMatrix().Data)
			if ctl.Offset != nil && len(ctl.Offset[i]) != n {
				return nil, fmt.Errorf("train: drift correction of parameter %d has the wrong size", i)
			}
			gradSum[i] = make([]float64, n)
		}
	}
	xb := mat.NewDense(cfg.BatchSize, pixels.Count, nil)
	var dpRNG *rand.Rand
	var picked []int
	if cfg.DP != nil {
		dpRNG = rand.New(rand.NewChaCha8(cfg.DP.Seed))
	}
	labels := make([]uint8, cfg.BatchSize)
	warmup := cfg.PolyWarmupSteps
	if warmup <= 0 {
		warmup = total / 10
	}
	penalty := cfg.PolyRangePenalty
	if penalty <= 0 {
		penalty = 1
	}
	var fitSample *mat.Dense
	if hasUnfitted(layers) || hasPoly(cfg.Arch) {
		fitSample = polySample(train, cfg.Seed)
	}
	step := 0
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	for epoch := 0; epoch < epochs; epoch++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for b := 0; b < batches && step < total; b++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			rows := cfg.BatchSize
			if cfg.DP != nil {
				// Poisson sampling with the secret stream: each example is
				// in the batch with probability BatchSize/n.
				picked = picked[:0]
				q := float64(cfg.BatchSize) / float64(n)
				for i := range n {
					if dpRNG.Float64() < q {
						picked = append(picked, i)
					}
				}
				rows = max(1, len(picked)) // an empty batch: one row whose gradient is dropped
				xb = mat.NewDense(rows, pixels.Count, nil)
				labels = make([]uint8, rows)
			}
			raw := xb.RawMatrix().Data
			for r := 0; r < rows; r++ {
				idx := 0
				switch {
				case cfg.DP == nil:
					idx = order[b*cfg.BatchSize+r]
				case len(picked) > 0:
					idx = picked[r]
				}
				img := train.Images[idx]
				if cfg.Augment {
					img = dataset.Augment(img, rng)
				}
				for k, p := range img {
					raw[r*pixels.Count+k] = float64(p) / (1 << model.InputFrac)
				}
				labels[r] = train.Labels[idx]
			}
			if step == warmup && hasUnfitted(layers) {
				if err := fitPolys(layers, fitSample); err != nil {
					return nil, fmt.Errorf("train: %w", err)
				}
			}
			// Forward.
			x := xb
			for _, l := range layers {
				l.x = x
				switch l.spec.Kind {
				case model.KindPoly:
					z := l.activate(x)
					l.z = z
					x = z
				case model.KindDense:
					z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
					z.Mul(x, l.W.w.T())
					bias := l.B.w.RawRowView(0)
					for r := 0; r < z.RawMatrix().Rows; r++ {
						row := z.RawRowView(r)
						for k := range row {
							row[k] += bias[k]
						}
					}
					l.z = z
					x = z
				case model.KindSquare:
					z := mat.NewDense(x.RawMatrix().Rows, l.out, nil)
					z.MulElem(x, x)
					l.z = z
					x = z
				}
			}
			// Softmax cross-entropy; grad = (softmax - onehot)/batch.
			grad := mat.NewDense(rows, 10, nil)
			var loss float64
			for r := 0; r < rows; r++ {
				row := x.RawRowView(r)
				mx := math.Inf(-1)
				for _, v := range row {
					mx = math.Max(mx, v)
				}
				var sum float64
				g := grad.RawRowView(r)
				for k, v := range row {
					g[k] = math.Exp(v - mx)
					sum += g[k]
				}
				for k := range g {
					g[k] /= sum
				}
				loss -= math.Log(math.Max(g[labels[r]], 1e-300))
				g[labels[r]] -= 1
				for k := range g {
					g[k] /= float64(cfg.BatchSize)
				}
			}
			loss /= float64(rows)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("train: loss diverged at epoch %d batch %d", epoch, b)
			}
			// Backward.
			if cfg.DP != nil {
				dpBackward(layers, grad, cfg.DP, len(picked) == 0, float64(cfg.BatchSize), dpRNG)
			}
			for i := len(layers) - 1; i >= 0 && cfg.DP == nil; i-- {
				l := layers[i]
				switch l.spec.Kind {
				case model.KindDense:
					l.gW.Mul(grad.T(), l.x)
					gb := l.gB.RawRowView(0)
					for k := range gb {
						gb[k] = 0
					}
					for r := 0; r < grad.RawMatrix().Rows; r++ {
						row := grad.RawRowView(r)
						for k, v := range row {
							gb[k] += v
						}
					}
					if i > 0 {
						next := mat.NewDense(grad.RawMatrix().Rows, l.in, nil)
						next.Mul(grad, l.W.w)
						grad = next
					}
				case model.KindSquare:
					next := mat.NewDense(grad.RawMatrix().Rows, l.in, nil)
					next.MulElem(grad, l.x)
					next.Scale(2, next)
					grad = next
				case model.KindPoly:
					grad = l.backward(grad, penalty/float64(cfg.BatchSize))
				}
			}
			// AdamW step with cosine learning-rate decay.
			step++
			pos := math.Min(1, float64(cfg.ScheduleOffset+step)/float64(schedule))
			lr := cfg.LearningRate * (0.02 + 0.98*0.5*(1+math.Cos(math.Pi*pos)))
			c1 := 1 - math.Pow(beta1, float64(step0+step))
			c2 := 1 - math.Pow(beta2, float64(step0+step))
			pi := 0
			for _, l := range layers {
				if l.spec.Kind != model.KindDense {
					continue
				}
				for _, pg := range []struct {
					p     param
					g     *mat.Dense
					decay bool
				}{{l.W, l.gW, true}, {l.B, l.gB, false}} {
					w, m, v, g := pg.p.w.RawMatrix().Data, pg.p.m.RawMatrix().Data, pg.p.v.RawMatrix().Data, pg.g.RawMatrix().Data
					var sum, off []float64
					if gradSum != nil {
						sum = gradSum[pi]
						if cfg.Control.Offset != nil {
							off = cfg.Control.Offset[pi]
						}
					}
					pi++
					for k := range w {
						gk := g[k]
						// Clip each gradient entry: squares can spike early on.
						gk = math.Max(-1, math.Min(1, gk))
						if sum != nil {
							sum[k] += gk
							if off != nil {
								gk += off[k]
							}
						}
						m[k] = beta1*m[k] + (1-beta1)*gk
						v[k] = beta2*v[k] + (1-beta2)*gk*gk
						upd := (m[k] / c1) / (math.Sqrt(v[k]/c2) + eps)
						if pg.decay {
							upd += cfg.WeightDecay * w[k]
						}
						w[k] -= lr * upd
					}
				}
			}
			if cfg.Progress != nil {
				cfg.Progress(step, total, loss)
			}
		}
	}
	if ctl := cfg.Control; ctl != nil {
		for _, gs := range gradSum {
			for k := range gs {
				gs[k] /= float64(max(step, 1))
			}
		}
		ctl.MeanGradient = gradSum
	}
	if st := cfg.State; st != nil {
		st.Step = step0 + step
		st.M, st.V = make([][]float64, len(params)), make([][]float64, len(params))
		for i, p := range params {
			st.M[i] = append([]float64(nil), p.m.RawMatrix().Data...)
			st.V[i] = append([]float64(nil), p.v.RawMatrix().Data...)
		}
	}
	if step <= warmup && hasUnfitted(layers) {
		// Training ended before (or right at) the fit: fit now.
		if err := fitPolys(layers, fitSample); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if fitSample != nil {
		observePolys(layers, fitSample)
	}
	f := &model.Float{}
	for _, l := range layers {
		fl := model.FloatLayer{Kind: l.spec.Kind, In: l.in, Out: l.out}
		if l.spec.Kind == model.KindDense {
			fl.W = append([]float64(nil), l.W.w.RawMatrix().Data...)
			fl.B = append([]float64(nil), l.B.w.RawMatrix().Data...)
		}
		if l.spec.Kind == model.KindPoly {
			fl.Coeffs = append([]float64(nil), l.coeffs...)
			a := *l.approx
			fl.Approx = &a
		}
		f.Layers = append(f.Layers, fl)
	}
	return f, nil
}

// matches checks that f has the layers of arch on 784 inputs.
func matches(f *model.Float, arch model.Architecture) error {
	if len(f.Layers) != len(arch) {
		return fmt.Errorf("%d layers, the architecture has %d", len(f.Layers), len(arch))
	}
	in := pixels.Count
	for i, s := range arch {
		l := f.Layers[i]
		out := s.Out
		if s.Kind != model.KindDense {
			out = in
		}
		if l.Kind != s.Kind || l.In != in || l.Out != out {
			return fmt.Errorf("layer %d is %v %d→%d, want %v %d→%d", i, l.Kind, l.In, l.Out, s.Kind, in, out)
		}
		if s.Kind == model.KindPoly && len(l.Coeffs) != s.Degree+1 {
			return fmt.Errorf("layer %d has %d polynomial coefficients, want %d", i, len(l.Coeffs), s.Degree+1)
		}
		if s.Kind == model.KindDense && (len(l.W) != in*out || len(l.B) != out) {
			return fmt.Errorf("layer %d has %d weights and %d biases, want %d and %d", i, len(l.W), len(l.B), in*out, out)
		}
		in = out
	}
	return nil
}

// FloatAccuracy returns the fraction of images the float network classifies
// correctly.
func FloatAccuracy(f *model.Float, s *dataset.Set) float64 {
	correct := 0
	for i, img := range s.Images {
		if model.Class(f.Forward(model.PixelsToInput(img[:]))) == int(s.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(s.Len())
}

// FixedAccuracy returns the fraction of images the fixed-point model
// classifies correctly.
func FixedAccuracy(m *model.Model, s *dataset.Set) float64 {
	correct := 0
	for i, img := range s.Images {
		y, err := m.Forward(img[:])
		if err == nil && model.Class(y) == int(s.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(s.Len())
}
