package main

import (
	"fmt"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/model/training"
	"github.com/veil-project/veil/pixels"
)

func newTrainCmd(g *globalOptions) *cobra.Command {
	o := training.FileOptions{Config: training.DefaultConfig()}
	var out, arch string
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train an HE-friendly network on MNIST and write a model file",
		Long: `Train a network of dense layers and square activations or polynomial
approximations of ReLU ("reluD": degree D, fitted by least squares on the
range of pre-activations seen in training, with the range and the fit's
error stated in the model file) on the 60,000 MNIST training images (from
the GoMNIST module), quantise it to fixed point and write a model file.
Training is deterministic given --seed. For example:
  veil train --arch 128,relu2,64,relu2,10 --epochs 8 --augment=false --out mlp.json

The committed default model was made with:
  veil train --out model/default_model.json`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		a, err := model.ParseArchitecture(arch)
		if err != nil {
			return nil, usageError("--arch: %v", err)
		}
		o.Arch = a
		if !cmd.Flags().Changed("name") {
			o.Name = training.NameFor(a)
		}
		var bar *progressbar.ProgressBar
		o.Progress = func(done, total int, loss float64) {
			if bar == nil {
				bar = g.progress(int64(total), "training "+a.String())
			}
			if done%20 == 0 || done == total {
				bar.Describe(fmt.Sprintf("training %s loss %.3f", a, loss))
				_ = bar.Set(done)
			}
		}
		return training.TrainMNIST(cmd.Context(), out, o)
	})
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "model.json", "output model file")
	fl.StringVar(&o.Name, "name", model.DefaultName, "model name")
	fl.StringVar(&arch, "arch", "32,128,sq,10", fmt.Sprintf("layers after the %d inputs: sizes of dense layers, 'sq' for the square activation, 'reluD' for a degree-D ReLU approximation", pixels.Count))
	fl.IntVar(&o.Epochs, "epochs", o.Epochs, "training epochs")
	fl.IntVar(&o.BatchSize, "batch", o.BatchSize, "mini-batch size")
	fl.Float64Var(&o.LearningRate, "lr", o.LearningRate, "Adam learning rate")
	fl.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
	fl.BoolVar(&o.Augment, "augment", o.Augment, "random affine distortions of the training images")
	fl.IntVar(&o.WeightBits, "weight-bits", 8, "bits per fixed-point weight")
	fl.IntVar(&o.ActivationBits, "activation-bits", 14, "target bits of intermediate fixed-point values")
	fl.IntVar(&o.Calibration, "calibration", 5000, "training images used to calibrate the fixed-point shifts")
	return cmd
}
