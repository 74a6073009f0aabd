package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/bench"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
)

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
			test, err := dataset.MNISTTest()
			if err != nil {
				return err
			}
			if encrypted && (pack < 1 || pack > he.DefaultParametersLiteral.Blocks()) {
				return usageError("--pack must be in [1, %d]", he.DefaultParametersLiteral.Blocks())
			}
			bar := g.progress(int64(limit), "encrypted inference")
			res, err := bench.Eval(cmd.Context(), bench.EvalOptions{Model: m, Test: test, Limit: limit, Encrypted: encrypted, Pack: pack,
				Progress: func(done, _ int) { _ = bar.Set(done) }})
			if err != nil {
				return err
			}
			_ = bar.Finish()
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
