package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
)

type evalResult struct {
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

func newEvalCmd(g *globalOptions) *cobra.Command {
	var (
		encrypted bool
		limit     int
		pack      int
		asJSON    bool
		modelPath string
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure accuracy and latency on the MNIST test set, encrypted and in plaintext",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit <= 0 || limit > 10000 {
				return usageError("--limit must be in [1, 10000]")
			}
			mf, err := loadModel(modelPath)
			if err != nil {
				return err
			}
			m := mf.Model
			dir, err := dataset.FindMNISTDir()
			if err != nil {
				return err
			}
			test, err := dataset.LoadTest(dir)
			if err != nil {
				return err
			}
			res := evalResult{N: limit, Encrypted: encrypted, Model: m.Name}
			deq := m.Dequantize()
			scale := m.Scale()
			fixed := make([][]int64, limit)
			floats := make([][]float64, limit)
			var okFixed, okFloat int
			for i := 0; i < limit; i++ {
				if fixed[i], err = m.Forward(test.Images[i][:]); err != nil {
					return err
				}
				floats[i] = deq.Forward(model.PixelsToInput(test.Images[i][:]))
				if model.Class(fixed[i]) == int(test.Labels[i]) {
					okFixed++
				}
				if model.Class(floats[i]) == int(test.Labels[i]) {
					okFloat++
				}
				for r := range fixed[i] {
					res.MaxFixedVsFloat = math.Max(res.MaxFixedVsFloat, math.Abs(float64(fixed[i][r])*scale-floats[i][r]))
				}
			}
			res.PlaintextAccuracy = float64(okFixed) / float64(limit)
			res.FloatAccuracy = float64(okFloat) / float64(limit)
			if encrypted {
				if err := evalEncrypted(cmd, g, m, test, fixed, floats, pack, &res); err != nil {
					return err
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "model %s, %d MNIST test images\n", m.Name, limit)
			fmt.Fprintf(w, "plaintext accuracy: fixed point %.2f%%, float %.2f%% (max |fixed-float| score difference %.4f)\n",
				100*res.PlaintextAccuracy, 100*res.FloatAccuracy, res.MaxFixedVsFloat)
			if encrypted {
				fmt.Fprintf(w, "encrypted accuracy %.2f%%, agreement with plaintext %.2f%%\n", 100*res.Accuracy, 100*res.Agreement)
				fmt.Fprintf(w, "latency per ciphertext (%d image(s)): median %.1f ms, p95 %.1f ms; per image %.1f ms\n",
					res.Pack, res.LatencyP50, res.LatencyP95, res.PerImageP50)
				fmt.Fprintf(w, "|decrypted - fixed point| max %.4f, 99.9%% %.4f; |decrypted - float| max %.4f\n",
					res.MaxErrVsFixed, res.P999ErrVsFixed, res.MaxErrVsFloat)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&encrypted, "encrypted", false, "also run every image through CKKS encryption")
	fl.IntVar(&limit, "limit", 10000, "number of test images (from index 0)")
	fl.IntVar(&pack, "pack", 1, "images per ciphertext (1 measures single-image latency; up to the number of blocks)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	fl.StringVar(&modelPath, "model", "", "model file (default: the committed default model)")
	return cmd
}

func evalEncrypted(cmd *cobra.Command, g *globalOptions, m *model.Model, test *dataset.Set, fixed [][]int64, floats [][]float64, pack int, res *evalResult) error {
	hctx, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		return err
	}
	net, err := hctx.Compile(m, he.DefaultEvaluationSettings)
	if err != nil {
		return err
	}
	layout := net.Layout()
	if pack < 1 || pack > layout.Blocks {
		return usageError("--pack must be in [1, %d]", layout.Blocks)
	}
	res.Pack = pack
	sk := hctx.GenSecretKey()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		return err
	}
	wire, err := keys.MarshalBinary()
	if err != nil {
		return err
	}
	serverKeys, err := hctx.UnmarshalEvaluationKeys(wire, net.GaloisElements())
	if err != nil {
		return err
	}
	n := len(fixed)
	scale := m.Scale()
	var lat []float64
	var errsFixed []float64
	var ok, agree int
	bar := g.progress(int64(n), "encrypted inference")
	for start := 0; start < n; start += pack {
		end := min(n, start+pack)
		images := make([][]uint8, end-start)
		for i := range images {
			images[i] = test.Images[start+i][:]
		}
		t0 := time.Now()
		ct, err := sk.Encrypt(layout, images)
		if err != nil {
			return err
		}
		in, err := ct.MarshalBinary()
		if err != nil {
			return err
		}
		sct, err := hctx.UnmarshalCiphertext(in)
		if err != nil {
			return err
		}
		out, err := net.Evaluate(cmd.Context(), sct, serverKeys)
		if err != nil {
			return err
		}
		ow, err := out.MarshalBinary()
		if err != nil {
			return err
		}
		back, err := hctx.UnmarshalCiphertext(ow)
		if err != nil {
			return err
		}
		scores, err := sk.Decrypt(layout, back)
		if err != nil {
			return err
		}
		lat = append(lat, ms(time.Since(t0)))
		for i := range images {
			k := start + i
			c := model.Class(scores[i])
			if c == int(test.Labels[k]) {
				ok++
			}
			if c == model.Class(fixed[k]) {
				agree++
			}
			for r := range scores[i] {
				e := math.Abs(scores[i][r] - float64(fixed[k][r])*scale)
				errsFixed = append(errsFixed, e)
				res.MaxErrVsFloat = math.Max(res.MaxErrVsFloat, math.Abs(scores[i][r]-floats[k][r]))
			}
		}
		_ = bar.Add(len(images))
	}
	_ = bar.Finish()
	res.Accuracy = float64(ok) / float64(n)
	res.Agreement = float64(agree) / float64(n)
	res.LatencyP50 = percentile(lat, 0.5)
	res.LatencyP95 = percentile(lat, 0.95)
	res.PerImageP50 = res.LatencyP50 / float64(pack)
	res.MaxErrVsFixed = percentile(errsFixed, 1)
	res.P999ErrVsFixed = percentile(errsFixed, 0.999)
	return nil
}

// percentile returns the q-quantile (nearest rank) of xs.
func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}
