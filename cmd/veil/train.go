package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/pixels"
)

func newTrainCmd(g *globalOptions) *cobra.Command {
	cfg := training.DefaultConfig()
	var (
		out, arch, name  string
		weightBits, actB int
		calib            int
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train an HE-friendly network on MNIST and write a model file",
		Long: `Train a network of dense layers and square activations on the 60,000 MNIST
training images (from the GoMNIST module), quantise it to fixed point and
write a model file. Training is deterministic given --seed.

The committed default model was made with:
  veil train --out model/default_model.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := parseArch(arch)
			if err != nil {
				return usageError("--arch: %v", err)
			}
			cfg.Arch = a
			dir, err := dataset.FindMNISTDir()
			if err != nil {
				return err
			}
			train, err := dataset.LoadTrain(dir)
			if err != nil {
				return err
			}
			test, err := dataset.LoadTest(dir)
			if err != nil {
				return err
			}
			bar := g.progress(int64(cfg.Epochs*(train.Len()/cfg.BatchSize)), "training "+a.String())
			cfg.Progress = func(done, total int, loss float64) {
				if done%20 == 0 || done == total {
					bar.Describe(fmt.Sprintf("training %s loss %.3f", a, loss))
					_ = bar.Set(done)
				}
			}
			f, err := training.Train(cmd.Context(), train, cfg)
			if err != nil {
				return err
			}
			_ = bar.Finish()
			cal := make([][]uint8, min(calib, train.Len()))
			for i := range cal {
				cal[i] = train.Images[i][:]
			}
			m, err := model.Quantize(f, name, model.QuantizeOptions{WeightBits: weightBits, ActivationBits: actB, Calibration: cal})
			if err != nil {
				return err
			}
			m.Description = fmt.Sprintf("%s, square activation, %d-bit weights; trained on MNIST by veil train", a, weightBits)
			info := &model.TrainingInfo{
				Seed: cfg.Seed, Epochs: cfg.Epochs, BatchSize: cfg.BatchSize, LearningRate: cfg.LearningRate,
				Augment: cfg.Augment, FloatAccuracy: training.FloatAccuracy(f, test), FixedAccuracy: training.FixedAccuracy(m, test),
				TestImages: test.Len(), CalibrationImages: len(cal),
			}
			file := &model.File{Model: m, Training: info}
			if err := file.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "model %s (%d weights) written to %s\nsha256 %s\ntest accuracy: float %.2f%%, fixed point %.2f%%\n",
				m.Name, m.NumWeights(), out, file.SHA256, 100*info.FloatAccuracy, 100*info.FixedAccuracy)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "model.json", "output model file")
	fl.StringVar(&name, "name", model.DefaultName, "model name")
	fl.StringVar(&arch, "arch", "32,128,sq,10", "layers after the "+fmt.Sprint(pixels.Count)+" inputs: sizes of dense layers and 'sq' for the square activation")
	fl.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "training epochs")
	fl.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "mini-batch size")
	fl.Float64Var(&cfg.LearningRate, "lr", cfg.LearningRate, "Adam learning rate")
	fl.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fl.BoolVar(&cfg.Augment, "augment", cfg.Augment, "random affine distortions of the training images")
	fl.IntVar(&weightBits, "weight-bits", 8, "bits per fixed-point weight")
	fl.IntVar(&actB, "activation-bits", 14, "target bits of intermediate fixed-point values")
	fl.IntVar(&calib, "calibration", 5000, "training images used to calibrate the fixed-point shifts")
	return cmd
}

func parseArch(s string) (model.Architecture, error) {
	var a model.Architecture
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "sq" {
			a = append(a, model.LayerSpec{Kind: model.KindSquare})
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n > 4096 {
			return nil, fmt.Errorf("layer %q is neither a size in [1, 4096] nor 'sq'", f)
		}
		a = append(a, model.LayerSpec{Kind: model.KindDense, Out: n})
	}
	if len(a) == 0 || a[len(a)-1].Kind != model.KindDense || a[len(a)-1].Out != 10 {
		return nil, fmt.Errorf("the last layer must be a dense layer of 10")
	}
	return a, nil
}
