package main

import (
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/bench"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
)

func newEvalCmd(g *globalOptions) *cobra.Command {
	var o bench.EvalOptions
	var modelPath string
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure accuracy and latency on the MNIST test set, encrypted and in plaintext",
		Args:  cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if o.Limit <= 0 || o.Limit > 10000 {
			return nil, usageError("--limit must be in [1, 10000]")
		}
		if blocks := he.DefaultParametersLiteral.Blocks(); o.Encrypted && (o.Pack < 1 || o.Pack > blocks) {
			return nil, usageError("--pack must be in [1, %d]", blocks)
		}
		mf, err := model.LoadOrDefault(modelPath)
		if err != nil {
			return nil, err
		}
		if o.Test, err = dataset.MNISTTest(); err != nil {
			return nil, err
		}
		o.Model = mf.Model
		if o.Encrypted {
			bar := g.progress(int64(o.Limit), "encrypted inference")
			defer bar.Finish()
			o.Progress = func(done, _ int) { _ = bar.Set(done) }
		}
		res, err := bench.Eval(cmd.Context(), o)
		if err != nil {
			return nil, err
		}
		return res, nil
	})
	fl := cmd.Flags()
	fl.BoolVar(&o.Encrypted, "encrypted", false, "also run every image through CKKS encryption")
	fl.IntVar(&o.Limit, "limit", 10000, "number of test images (from index 0)")
	fl.IntVar(&o.Pack, "pack", 1, "images per ciphertext (1 measures single-image latency; up to the number of blocks)")
	fl.StringVar(&modelPath, "model", "", "model file (default: the committed default model)")
	return cmd
}
