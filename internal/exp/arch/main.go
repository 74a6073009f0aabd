package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

func main() {
	arch := flag.String("arch", "32,128,sq,10", "")
	epochs := flag.Int("epochs", 10, "")
	lr := flag.Float64("lr", 2e-3, "")
	aug := flag.Bool("aug", true, "")
	wb := flag.Int("wb", 8, "")
	ab := flag.Int("ab", 14, "")
	flag.Parse()
	var a model.Architecture
	for _, s := range strings.Split(*arch, ",") {
		if s == "sq" {
			a = append(a, model.LayerSpec{Kind: model.KindSquare})
		} else {
			n, _ := strconv.Atoi(s)
			a = append(a, model.LayerSpec{Kind: model.KindDense, Out: n})
		}
	}
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		panic(err)
	}
	tr, _ := dataset.LoadTrain(dir)
	te, _ := dataset.LoadTest(dir)
	cfg := model.DefaultTrainConfig()
	cfg.Arch = a
	cfg.Epochs = *epochs
	cfg.LearningRate = *lr
	cfg.Augment = *aug
	t0 := time.Now()
	cfg.Progress = func(d, t int, loss float64) {
		if d%(t/cfg.Epochs) == 0 {
			fmt.Fprintf(os.Stderr, "epoch %d loss %.4f %v\n", d/(t/cfg.Epochs), loss, time.Since(t0))
		}
	}
	f, err := model.Train(context.Background(), tr, cfg)
	if err != nil {
		panic(err)
	}
	cal := make([][]uint8, 2000)
	for i := range cal {
		cal[i] = tr.Images[i][:]
	}
	m, err := model.Quantize(f, "x", model.QuantizeOptions{WeightBits: *wb, ActivationBits: *ab, Calibration: cal})
	if err != nil {
		panic(err)
	}
	fmt.Printf("arch=%s epochs=%d lr=%g aug=%v float=%.4f fixed=%.4f deq=%.4f weights=%d time=%v\n", a, *epochs, *lr, *aug, f.Accuracy(te), m.Accuracy(te), m.Dequantize().Accuracy(te), m.NumWeights(), time.Since(t0))
	for i, l := range m.Layers {
		fmt.Printf("  layer %d %s wf=%d shift=%d bb=%d frac=%d\n", i, l.Kind, l.WeightFrac, l.Shift, l.BiasBits, m.Frac(i))
	}
	fh := &model.File{Model: m}
	fh.Save("/tmp/model-" + strings.ReplaceAll(*arch, ",", "-") + ".json")
}
