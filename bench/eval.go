package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
)

// EvalOptions configure [Eval].
type EvalOptions struct {
	Model *model.Model
	// Test holds the labelled images; the first Limit are used.
	Test  *dataset.Set
	Limit int
	// Encrypted also runs every image through CKKS (default parameters and
	// settings), Pack images per ciphertext.
	Encrypted bool
	Pack      int
	// Progress, when set, is told how many images went through CKKS.
	Progress func(done, total int)
}

// EvalResult is what `veil eval` reports.
type EvalResult struct {
	N                 int     `json:"n"`
	Encrypted         bool    `json:"encrypted"`
	Accuracy          float64 `json:"accuracy"`
	PlaintextAccuracy float64 `json:"plaintext_accuracy"`
	FloatAccuracy     float64 `json:"float_accuracy"`
	Agreement         float64 `json:"agreement"`
	Pack              int     `json:"images_per_ciphertext,omitempty"`
	LatencyP50        float64 `json:"latency_ms_p50,omitempty"`
	LatencyP95        float64 `json:"latency_ms_p95,omitempty"`
	PerImageP50       float64 `json:"latency_ms_per_image_p50,omitempty"`
	// Distance between the decrypted scores and the exact fixed-point
	// scores (in real units): the tolerance the challenge check needs.
	MaxErrVsFixed  float64 `json:"max_abs_error_vs_fixed,omitempty"`
	P999ErrVsFixed float64 `json:"p999_abs_error_vs_fixed,omitempty"`
	// Distance between the decrypted scores and the float network CKKS
	// approximates (no intermediate rounding): the CKKS error alone.
	MaxErrVsFloat float64 `json:"max_abs_error_vs_float,omitempty"`
	// Distance between fixed-point and float scores.
	MaxFixedVsFloat float64 `json:"max_abs_fixed_vs_float"`
	Model           string  `json:"model"`
}

// ErrPack is returned for a number of images per ciphertext that the
// default parameters cannot hold.
var ErrPack = errors.New("images per ciphertext out of range")

// Eval measures a model's accuracy on the first Limit test images, in
// fixed point and in float, and with Encrypted also under CKKS: accuracy,
// agreement with the fixed-point class, latency per ciphertext and the
// distance of the decrypted scores from the exact ones.
func Eval(ctx context.Context, o EvalOptions) (*EvalResult, error) {
	m := o.Model
	if o.Limit <= 0 || o.Limit > o.Test.Len() {
		return nil, fmt.Errorf("eval: %d images, the set has %d", o.Limit, o.Test.Len())
	}
	ref, err := plaintextReference(m, o.Test, o.Limit)
	if err != nil {
		return nil, err
	}
	res := &EvalResult{N: o.Limit, Encrypted: o.Encrypted, Model: m.Name,
		PlaintextAccuracy: ref.fixedAccuracy, FloatAccuracy: ref.floatAccuracy, MaxFixedVsFloat: ref.maxFixedVsFloat}
	if !o.Encrypted {
		return res, nil
	}
	if blocks := he.DefaultParametersLiteral.Blocks(); o.Pack < 1 || o.Pack > blocks {
		return nil, fmt.Errorf("%w: %d, want 1 to %d", ErrPack, o.Pack, blocks)
	}
	sess, err := he.NewDefaultLocalSession(m)
	if err != nil {
		return nil, err
	}
	run, err := runEncrypted(ctx, sess, ref, o.Pack, o.Progress)
	if err != nil {
		return nil, err
	}
	n := float64(o.Limit)
	res.Pack = o.Pack
	res.Accuracy, res.Agreement = float64(run.correct)/n, float64(run.agree)/n
	res.LatencyP50 = stats.Quantile(run.latencyMS, 0.5)
	res.LatencyP95 = stats.Quantile(run.latencyMS, 0.95)
	res.PerImageP50 = res.LatencyP50 / float64(o.Pack)
	res.MaxErrVsFixed = stats.Quantile(run.errVsFixed, 1)
	res.P999ErrVsFixed = stats.Quantile(run.errVsFixed, 0.999)
	res.MaxErrVsFloat = run.maxErrVsFloat
	return res, nil
}

// reference is a model's plaintext outputs on the first images of a set.
type reference struct {
	model  *model.Model
	set    *dataset.Set
	fixed  [][]int64   // exact fixed-point scores
	floats [][]float64 // the float network CKKS evaluates
	// Accuracies and the largest |fixed - float| score difference, in real
	// units.
	fixedAccuracy, floatAccuracy, maxFixedVsFloat float64
}

func plaintextReference(m *model.Model, set *dataset.Set, n int) (*reference, error) {
	deq, scale := m.Dequantize(), m.Scale()
	ref := &reference{model: m, set: set, fixed: make([][]int64, n), floats: make([][]float64, n)}
	var okFixed, okFloat int
	for i := 0; i < n; i++ {
		var err error
		if ref.fixed[i], err = m.Forward(set.Images[i][:]); err != nil {
			return nil, err
		}
		ref.floats[i] = deq.Forward(model.PixelsToInput(set.Images[i][:]))
		if model.Class(ref.fixed[i]) == int(set.Labels[i]) {
			okFixed++
		}
		if model.Class(ref.floats[i]) == int(set.Labels[i]) {
			okFloat++
		}
		for r := range ref.fixed[i] {
			ref.maxFixedVsFloat = math.Max(ref.maxFixedVsFloat, math.Abs(float64(ref.fixed[i][r])*scale-ref.floats[i][r]))
		}
	}
	ref.fixedAccuracy, ref.floatAccuracy = float64(okFixed)/float64(n), float64(okFloat)/float64(n)
	return ref, nil
}

// encryptedRun is an encrypted pass over the images of a reference.
type encryptedRun struct {
	correct, agree int       // right class; same class as fixed point
	latencyMS      []float64 // end to end, per ciphertext
	errVsFixed     []float64 // |decrypted - fixed-point| per score
	maxErrVsFloat  float64
}

// runEncrypted classifies the reference's images pack per ciphertext.
func runEncrypted(ctx context.Context, sess *he.LocalSession, ref *reference, pack int, progress func(done, total int)) (*encryptedRun, error) {
	set, n, scale := ref.set, len(ref.fixed), ref.model.Scale()
	run := &encryptedRun{}
	for start := 0; start < n; start += pack {
		images := make([][]uint8, min(n, start+pack)-start)
		for i := range images {
			images[i] = set.Images[start+i][:]
		}
		rt, err := sess.RoundTrip(ctx, images)
		if err != nil {
			return nil, err
		}
		run.latencyMS = append(run.latencyMS, stats.Milliseconds(rt.Total()))
		for i := range images {
			k, scores := start+i, rt.Scores[i]
			c := model.Class(scores)
			if c == int(set.Labels[k]) {
				run.correct++
			}
			if c == model.Class(ref.fixed[k]) {
				run.agree++
			}
			for r := range scores {
				run.errVsFixed = append(run.errVsFixed, math.Abs(scores[r]-float64(ref.fixed[k][r])*scale))
				run.maxErrVsFloat = math.Max(run.maxErrVsFloat, math.Abs(scores[r]-ref.floats[k][r]))
			}
		}
		if progress != nil {
			progress(start+len(images), n)
		}
	}
	return run, nil
}

// WriteText prints the result as `veil eval` does.
func (r *EvalResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "model %s, %d MNIST test images\n", r.Model, r.N)
	fmt.Fprintf(w, "plaintext accuracy: fixed point %.2f%%, float %.2f%% (max |fixed-float| score difference %.4f)\n",
		100*r.PlaintextAccuracy, 100*r.FloatAccuracy, r.MaxFixedVsFloat)
	if r.Encrypted {
		fmt.Fprintf(w, "encrypted accuracy %.2f%%, agreement with plaintext %.2f%%\n", 100*r.Accuracy, 100*r.Agreement)
		fmt.Fprintf(w, "latency per ciphertext (%d image(s)): median %.1f ms, p95 %.1f ms; per image %.1f ms\n",
			r.Pack, r.LatencyP50, r.LatencyP95, r.PerImageP50)
		fmt.Fprintf(w, "|decrypted - fixed point| max %.4f, 99.9%% %.4f; |decrypted - float| max %.4f\n",
			r.MaxErrVsFixed, r.P999ErrVsFixed, r.MaxErrVsFloat)
	}
	return nil
}

// EvalMNIST is Eval of the model file at modelPath (the default model when
// empty) on the MNIST test set, as `veil eval` runs it.
func EvalMNIST(ctx context.Context, modelPath string, o EvalOptions) (*EvalResult, error) {
	mf, err := model.LoadOrDefault(modelPath)
	if err != nil {
		return nil, err
	}
	if o.Test, err = dataset.MNISTTest(); err != nil {
		return nil, err
	}
	o.Model = mf.Model
	return Eval(ctx, o)
}
