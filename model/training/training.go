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
	if cfg.Epochs <= 0 || cfg.BatchSize <= 0 || cfg.LearningRate <= 0 {
		return nil, fmt.Errorf("train: epochs, batch size and learning rate must be positive (got %d, %d, %g)", cfg.Epochs, cfg.BatchSize, cfg.LearningRate)
	}
	if train.Len() < cfg.BatchSize {
		return nil, fmt.Errorf("train: %d images, fewer than a batch of %d", train.Len(), cfg.BatchSize)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7665696c))
	layers := make([]*trainLayer, len(cfg.Arch))
	in := pixels.Count
	for i, s := range cfg.Arch {
		out := s.Out
		if s.Kind == model.KindSquare {
			out = in
		}
		l := &trainLayer{spec: s, in: in, out: out}
		if s.Kind == model.KindDense {
			l.W, l.B = newParam(out, in), newParam(1, out)
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
			l.gW, l.gB = mat.NewDense(out, in, nil), mat.NewDense(1, out, nil)
		}
		layers[i] = l
		in = out
	}
	n := train.Len()
	batches := n / cfg.BatchSize
	total := batches * cfg.Epochs
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	xb := mat.NewDense(cfg.BatchSize, pixels.Count, nil)
	labels := make([]uint8, cfg.BatchSize)
	step := 0
	const beta1, beta2, eps = 0.9, 0.999, 1e-8
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for b := 0; b < batches; b++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			raw := xb.RawMatrix().Data
			for r := 0; r < cfg.BatchSize; r++ {
				idx := order[b*cfg.BatchSize+r]
				img := train.Images[idx]
				if cfg.Augment {
					img = dataset.Augment(img, rng)
				}
				for k, p := range img {
					raw[r*pixels.Count+k] = float64(p) / (1 << model.InputFrac)
				}
				labels[r] = train.Labels[idx]
			}
			// Forward.
			x := xb
			for _, l := range layers {
				l.x = x
				switch l.spec.Kind {
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
			grad := mat.NewDense(cfg.BatchSize, 10, nil)
			var loss float64
			for r := 0; r < cfg.BatchSize; r++ {
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
			loss /= float64(cfg.BatchSize)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("train: loss diverged at epoch %d batch %d", epoch, b)
			}
			// Backward.
			for i := len(layers) - 1; i >= 0; i-- {
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
				}
			}
			// AdamW step with cosine learning-rate decay.
			step++
			lr := cfg.LearningRate * (0.02 + 0.98*0.5*(1+math.Cos(math.Pi*float64(step)/float64(total))))
			c1 := 1 - math.Pow(beta1, float64(step))
			c2 := 1 - math.Pow(beta2, float64(step))
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
					for k := range w {
						gk := g[k]
						// Clip each gradient entry: squares can spike early on.
						gk = math.Max(-1, math.Min(1, gk))
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
	f := &model.Float{}
	for _, l := range layers {
		fl := model.FloatLayer{Kind: l.spec.Kind, In: l.in, Out: l.out}
		if l.spec.Kind == model.KindDense {
			fl.W = append([]float64(nil), l.W.w.RawMatrix().Data...)
			fl.B = append([]float64(nil), l.B.w.RawMatrix().Data...)
		}
		f.Layers = append(f.Layers, fl)
	}
	return f, nil
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
