package training

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
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

// NameFor is the model name `veil train` gives a network of architecture
// a: model.DefaultName for the default architecture (which it describes),
// else mnist-<the layers after the inputs>.
func NameFor(a model.Architecture) string {
	if a.String() == model.DefaultArchitecture.String() {
		return model.DefaultName
	}
	return "mnist-" + strings.TrimPrefix(a.String(), fmt.Sprint(pixels.Count)+"-")
}

// Written is a trained model file as TrainMNIST wrote it.
type Written struct {
	Model         string  `json:"model"`
	Weights       int     `json:"weights"`
	File          string  `json:"file"`
	SHA256        string  `json:"sha256"`
	FloatAccuracy float64 `json:"float_accuracy"`
	FixedAccuracy float64 `json:"fixed_accuracy"`
}

// TrainMNIST trains on the MNIST training set (TrainFile, accuracies on
// the test set) and writes the model file to path.
func TrainMNIST(ctx context.Context, path string, o FileOptions) (*Written, error) {
	train, test, err := dataset.MNIST()
	if err != nil {
		return nil, err
	}
	f, err := TrainFile(ctx, train, test, o)
	if err != nil {
		return nil, err
	}
	if err := f.Save(path); err != nil {
		return nil, err
	}
	return &Written{Model: f.Model.Name, Weights: f.Model.NumWeights(), File: path, SHA256: f.SHA256,
		FloatAccuracy: f.Training.FloatAccuracy, FixedAccuracy: f.Training.FixedAccuracy}, nil
}

// WriteText prints the file, its checksum and the test accuracies.
func (r *Written) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "model %s (%d weights) written to %s\nsha256 %s\ntest accuracy: float %.2f%%, fixed point %.2f%%\n",
		r.Model, r.Weights, r.File, r.SHA256, 100*r.FloatAccuracy, 100*r.FixedAccuracy)
	return err
}
