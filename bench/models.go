package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// randomModel is 784 -dense-> hidden -square-> -dense-> 10 with random 8-bit
// weights (|w| < 1/4): the layer kinds and sizes of a real network, with
// hidden values and scores of order 1 like the trained model's, for latency
// runs. Encrypted latency does not depend on the weights' values, only on
// the matrix shapes.
func randomModel(hidden int, seed uint64) (*model.Model, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(hidden)))
	dense := func(in, out, biasBits, shift int) model.Layer {
		l := model.Layer{Kind: model.KindDense, In: in, Out: out, WeightBits: 8, WeightFrac: 9, BiasBits: biasBits, Shift: shift}
		l.W = make([]int32, in*out)
		for i := range l.W {
			l.W[i] = int32(rng.IntN(256)) - 128
		}
		l.B = make([]int64, out)
		for i := range l.B {
			l.B[i] = rng.Int64N(1<<(biasBits-1)) - 1<<(biasBits-2)
		}
		return l
	}
	m := &model.Model{
		Name:        fmt.Sprintf("random-784-%d-sq-10", hidden),
		Description: "random 8-bit weights for latency benchmarks",
		Classes:     10,
		Layers: []model.Layer{
			dense(model.InputSize, hidden, 16, 8),
			{Kind: model.KindSquare, In: hidden, Out: hidden, Shift: 9},
			dense(hidden, 10, 16, 0),
		},
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("random model: %w", err)
	}
	return m, nil
}

// tinyModel is 784 -dense-> 4 -square-> -dense-> 10 with random weights:
// the default model's layer kinds in a circuit whose Groth16 setup takes
// seconds (the quick suite's proofs).
func tinyModel() (*model.Model, error) {
	rng := rand.New(rand.NewPCG(7, 1))
	dense := func(in, out, bb, shift int) model.Layer {
		l := model.Layer{Kind: model.KindDense, In: in, Out: out, WeightBits: 8, WeightFrac: 7, BiasBits: bb, Shift: shift}
		l.W = make([]int32, in*out)
		for i := range l.W {
			l.W[i] = int32(rng.IntN(256)) - 128
		}
		l.B = make([]int64, out)
		for i := range l.B {
			l.B[i] = rng.Int64N(1<<(bb-1)) - 1<<(bb-2)
		}
		return l
	}
	m := &model.Model{Name: "tiny-784-4-sq-10", Classes: 10, Layers: []model.Layer{
		dense(model.InputSize, 4, 17, 7),
		{Kind: model.KindSquare, In: 4, Out: 4, Shift: 16},
		dense(4, 10, 13, 0),
	}}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("tiny model: %w", err)
	}
	return m, nil
}

// affine is a dense map y = W·x + b with W rows×cols, row-major.
type affine struct {
	Rows int       `json:"rows"`
	Cols int       `json:"cols"`
	W    []float64 `json:"w"`
	B    []float64 `json:"b"`
}

// foldModel composes the dense layers on each side of the single square
// activation, as the he package does before encoding its diagonals: the
// peer evaluates exactly these two matrices.
func foldModel(m *model.Model) (first, last affine, err error) {
	f := m.Dequantize()
	var cur *affine
	squares := 0
	for _, l := range f.Layers {
		switch l.Kind {
		case model.KindDense:
			a := affine{Rows: l.Out, Cols: l.In, W: l.W, B: l.B}
			if cur == nil {
				cur = &a
				continue
			}
			c := affine{Rows: a.Rows, Cols: cur.Cols, W: make([]float64, a.Rows*cur.Cols), B: append([]float64(nil), a.B...)}
			for i := 0; i < a.Rows; i++ {
				for k := 0; k < a.Cols; k++ {
					v := a.W[i*a.Cols+k]
					for j := 0; j < cur.Cols; j++ {
						c.W[i*cur.Cols+j] += v * cur.W[k*cur.Cols+j]
					}
					c.B[i] += v * cur.B[k]
				}
			}
			cur = &c
		case model.KindSquare:
			if cur == nil || squares > 0 {
				return first, last, errors.New("fold: want dense layers, one square, dense layers")
			}
			squares++
			first, cur = *cur, nil
		}
	}
	if squares != 1 || cur == nil {
		return first, last, errors.New("fold: want dense layers, one square, dense layers")
	}
	return first, *cur, nil
}

// randomImages returns n deterministic MNIST-like images (mostly dark,
// with bright strokes), for runs without the MNIST files.
func randomImages(n int) []dataset.Image {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]dataset.Image, n)
	for k := range out {
		for i := range out[k] {
			if rng.IntN(4) == 0 {
				out[k][i] = uint8(rng.IntN(256))
			}
		}
	}
	return out
}
