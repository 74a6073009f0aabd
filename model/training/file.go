package training

import (
	"context"
	"fmt"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// FileOptions say how TrainFile makes a model file.
type FileOptions struct {
	Config
	Name string
	// WeightBits and ActivationBits are the fixed-point widths (see
	// model.QuantizeOptions).
	WeightBits, ActivationBits int
	// Calibration is the number of training images that calibrate the
	// fixed-point shifts.
	Calibration int
}

// TrainFile trains a float network on train, quantises it, and returns the
// model file with its training record (accuracies measured on test).
func TrainFile(ctx context.Context, train, test *dataset.Set, o FileOptions) (*model.File, error) {
	f, err := Train(ctx, train, o.Config)
	if err != nil {
		return nil, err
	}
	cal := make([][]uint8, min(o.Calibration, train.Len()))
	for i := range cal {
		cal[i] = train.Images[i][:]
	}
	m, err := model.Quantize(f, o.Name, model.QuantizeOptions{WeightBits: o.WeightBits, ActivationBits: o.ActivationBits, Calibration: cal})
	if err != nil {
		return nil, err
	}
	act := "square activation"
	if hasPoly(o.Arch) {
		act = "polynomial approximations of ReLU fitted on the pre-activation ranges seen in training"
	}
	m.Description = fmt.Sprintf("%s, %s, %d-bit weights; trained on MNIST by veil train", o.Arch, act, o.WeightBits)
	return &model.File{Model: m, Training: &model.TrainingInfo{
		Seed: o.Seed, Epochs: o.Epochs, BatchSize: o.BatchSize, LearningRate: o.LearningRate,
		Augment: o.Augment, FloatAccuracy: FloatAccuracy(f, test), FixedAccuracy: FixedAccuracy(m, test),
		TestImages: test.Len(), CalibrationImages: len(cal),
	}}, nil
}
