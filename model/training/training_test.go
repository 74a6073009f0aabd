package training

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

func smallTrainSet(t *testing.T, n int) *dataset.Set {
	t.Helper()
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := dataset.LoadTest(dir) // the smaller file loads faster
	if err != nil {
		t.Fatal(err)
	}
	return &dataset.Set{Images: s.Images[:n], Labels: s.Labels[:n]}
}

func TestTrainIsDeterministicAndLearns(t *testing.T) {
	set := smallTrainSet(t, 2000)
	cfg := Config{Arch: model.Architecture{{Kind: model.KindDense, Out: 16}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}},
		Epochs: 3, BatchSize: 50, LearningRate: 3e-3, Seed: 7, Augment: true}
	a, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Layers {
		for k := range a.Layers[i].W {
			if a.Layers[i].W[k] != b.Layers[i].W[k] {
				t.Fatalf("layer %d weight %d differs between two runs with the same seed", i, k)
			}
		}
	}
	// 10 classes: chance is 10%. Three epochs on 2,000 images reach far more.
	if acc := FloatAccuracy(a, set); acc < 0.8 {
		t.Fatalf("training accuracy %.3f < 0.8", acc)
	}
	m, err := model.Quantize(a, "tiny", model.QuantizeOptions{WeightBits: 8, ActivationBits: 14, Calibration: [][]uint8{set.Images[0][:], set.Images[1][:]}})
	if err != nil {
		t.Fatal(err)
	}
	if fa, qa := FloatAccuracy(a, set), FixedAccuracy(m, set); qa < fa-0.02 {
		t.Fatalf("quantisation lost too much: float %.3f, fixed %.3f", fa, qa)
	}
}

func TestTrainRejectsBadConfig(t *testing.T) {
	set := smallTrainSet(t, 100)
	if _, err := Train(context.Background(), set, Config{Arch: model.Architecture{{Kind: model.KindDense, Out: 5}}, Epochs: 1, BatchSize: 10, LearningRate: 1}); err == nil {
		t.Fatal("accepted a last layer of 5")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, set, Config{Arch: model.Architecture{{Kind: model.KindDense, Out: 10}}, Epochs: 1, BatchSize: 10, LearningRate: 1e-3}); err == nil {
		t.Fatal("a cancelled context did not stop training")
	}
}

func TestTrainFile(t *testing.T) {
	set := smallTrainSet(t, 1000)
	o := FileOptions{
		Config: Config{Arch: model.Architecture{{Kind: model.KindDense, Out: 8}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}},
			Epochs: 2, BatchSize: 50, LearningRate: 3e-3, Seed: 2},
		Name: "t8", WeightBits: 8, ActivationBits: 12, Calibration: 200,
	}
	f, err := TrainFile(context.Background(), set, set, o)
	if err != nil {
		t.Fatal(err)
	}
	if f.Model.Name != "t8" || f.Training == nil || f.Training.CalibrationImages != 200 || f.Training.TestImages != 1000 {
		t.Fatalf("file %q, training %+v", f.Model.Name, f.Training)
	}
	if acc := FixedAccuracy(f.Model, set); acc != f.Training.FixedAccuracy || acc < 0.5 {
		t.Fatalf("recorded fixed-point accuracy %.3f, measured %.3f", f.Training.FixedAccuracy, acc)
	}
	if err := f.Save(filepath.Join(t.TempDir(), "m.json")); err != nil {
		t.Fatal(err)
	}
}
