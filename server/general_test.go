package server

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
)

// generalModel is a random 784-24-relu2-16-relu2-10 network quantised on
// MNIST images.
func generalModel(t *testing.T, probe [][]uint8) *model.Model {
	t.Helper()
	arch, err := model.ParseArchitecture("24,relu2,16,relu2,10")
	if err != nil {
		t.Fatal(err)
	}
	f, err := model.RandomFloat(rand.New(rand.NewPCG(8, 8)), arch)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Quantize(f, "general-test", model.QuantizeOptions{WeightBits: 8, ActivationBits: 10, Calibration: probe})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A general network is served under the parameters chosen for it (three
// ciphertext primes, announced in ModelInfo) beside the default model; a
// client that knows the architecture checks the announced layout and gets
// the fixed-point classes.
func TestServeGeneralNetwork(t *testing.T) {
	test := mnist(t)
	probe := make([][]uint8, 32)
	for i := range probe {
		probe[i] = test.Images[i][:]
	}
	g := generalModel(t, probe)
	if _, err := New(Config{Models: []*model.Model{g}}); err == nil || !strings.Contains(err.Error(), "probe images") {
		t.Fatalf("a general network without probe images: %v", err)
	}
	if _, err := New(Config{Models: []*model.Model{g}, ProbeSource: func() ([][]uint8, error) { return probe, nil }}); err != nil {
		t.Fatalf("probe images from ProbeSource: %v", err)
	}
	env := start(t, Config{Models: []*model.Model{defaultModel(t), g}, Probe: probe}, Options{})
	ctx := context.Background()
	cl, err := client.NewClassifier(ctx, env.conn, client.ClassifierOptions{ModelID: g.Name, DataDir: t.TempDir(), Architecture: model.ArchitectureOf(g)})
	if err != nil {
		t.Fatal(err)
	}
	lit, err := he.UnmarshalParametersLiteral(cl.Info.GetCkks().GetLiteral())
	if err != nil || len(lit.LogQ) != 3 {
		t.Fatalf("announced parameters %v (%v)", lit, err)
	}
	layout := cl.Layout()
	imgs := make([][]uint8, layout.Blocks)
	for b := range imgs {
		imgs[b] = test.Images[100+b][:]
	}
	res, err := cl.Classify(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	deq := g.Dequantize()
	for b, img := range imgs {
		want := deq.Forward(model.PixelsToInput(img))
		for r := range want {
			if d := math.Abs(res.Scores[b][r] - want[r]); d > 0.05*(1+math.Abs(want[r])) {
				t.Fatalf("image %d score %d: decrypted %.4f, float %.4f", b, r, res.Scores[b][r], want[r])
			}
		}
	}
	// The default model is still served under the default parameters.
	dl, err := client.NewClassifier(ctx, env.conn, client.ClassifierOptions{ModelID: model.DefaultName, DataDir: t.TempDir(), Architecture: model.DefaultArchitecture})
	if err != nil {
		t.Fatal(err)
	}
	if dl.Info.GetCkks().GetFingerprint() == cl.Info.GetCkks().GetFingerprint() {
		t.Fatal("the default model announces the general network's parameters")
	}
	if _, err := dl.Classify(ctx, imgs[:1]); err != nil {
		t.Fatal(err)
	}
}
