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

// Training from an initial network with a step budget continues from its
// weights: zero steps of work would be refused, one step moves the weights
// a little, and a network of another shape is refused.
func TestTrainFromInitWithSteps(t *testing.T) {
	set := smallTrainSet(t, 1000)
	arch := model.Architecture{{Kind: model.KindDense, Out: 16}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}}
	base, err := Train(context.Background(), set, Config{Arch: arch, Epochs: 2, BatchSize: 50, LearningRate: 3e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	cfg := Config{Arch: arch, Steps: 7, BatchSize: 50, LearningRate: 1e-4, Seed: 2, Init: base,
		ScheduleOffset: 10, ScheduleTotal: 100, Progress: func(done, _ int, _ float64) { steps = done }}
	next, err := Train(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 7 {
		t.Fatalf("%d steps run, want 7", steps)
	}
	var moved, maxMove float64
	for i, l := range next.Layers {
		for k, w := range l.W {
			d := w - base.Layers[i].W[k]
			moved += d * d
			maxMove = max(maxMove, d, -d)
		}
	}
	// Adam moves each weight by at most about lr per step.
	if moved == 0 || maxMove > 7*1e-4*1.5 {
		t.Fatalf("weights moved by %g (largest %g) in 7 steps of lr 1e-4", moved, maxMove)
	}
	if acc := FloatAccuracy(next, set); acc < FloatAccuracy(base, set)-0.05 {
		t.Fatalf("a few small steps from a trained network lost accuracy: %.3f from %.3f", acc, FloatAccuracy(base, set))
	}
	cfg.Init = &model.Float{Layers: base.Layers[:2]}
	if _, err := Train(context.Background(), set, cfg); err == nil {
		t.Fatal("an initial network of another shape was accepted")
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

// The committed models' recorded test accuracies are what their weights
// give on the 10,000 MNIST test images, not only what the file says.
func TestCommittedModelsAccuracy(t *testing.T) {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	test, err := dataset.LoadTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		min  float64
	}{{"default", 0.98}, {"compact", 0.97}} {
		f, err := model.Committed(c.name)
		if err != nil {
			t.Fatal(err)
		}
		acc := FixedAccuracy(f.Model, test)
		if acc != f.Training.FixedAccuracy || f.Training.TestImages != test.Len() || acc < c.min {
			t.Fatalf("%s model: measured %.4f on %d images, recorded %.4f on %d (want ≥ %.2f)", c.name, acc, test.Len(), f.Training.FixedAccuracy, f.Training.TestImages, c.min)
		}
		t.Logf("%s model: fixed-point accuracy %.4f", c.name, acc)
	}
}
