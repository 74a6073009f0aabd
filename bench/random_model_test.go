package bench

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
)

// The random latency models must give scores of order 1 (like the trained
// model's), so that checkScores can tell a correct encrypted evaluation
// from garbage, and the encrypted network must compute them.
func TestRandomModelEncrypted(t *testing.T) {
	if testing.Short() {
		t.Skip("encrypted evaluation")
	}
	m, err := randomModel(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgs := randomImages(8)
	var peak float64
	f := m.Dequantize()
	pix := make([][]uint8, len(imgs))
	for i := range imgs {
		pix[i] = imgs[i][:]
		for _, s := range f.Forward(model.PixelsToInput(pix[i])) {
			peak = math.Max(peak, math.Abs(s))
		}
	}
	if peak < 0.5 || peak > 100 {
		t.Fatalf("largest score %.3g: want scores of order 1", peak)
	}
	c, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	net, err := c.Compile(m, he.DefaultEvaluationSettings)
	if err != nil {
		t.Fatal(err)
	}
	sk := c.GenSecretKey()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := keys.MarshalBinary()
	skeys, err := c.UnmarshalEvaluationKeys(bundle, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := sk.Encrypt(net.Layout(), pix)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Evaluate(context.Background(), ct, skeys)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := sk.Decrypt(net.Layout(), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkScores(m, pix, scores); err != nil {
		t.Fatal(err)
	}
	// And checkScores rejects scores that are off by more than the CKKS
	// error.
	scores[3][2] += 0.5 + 0.05*peak
	if err := checkScores(m, pix, scores); err == nil {
		t.Fatal("checkScores accepted a wrong score")
	}
}

// The quick suite's tiny model is the tests' tiny model: the same circuit
// and the same weights, so that proofs measured here are the ones tested.
func TestTinyModelIsTheTestsTinyModel(t *testing.T) {
	m, err := tinyModel()
	if err != nil {
		t.Fatal(err)
	}
	want := testmodels.Tiny(7)
	if len(m.Layers) != len(want.Layers) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(want.Layers))
	}
	for i, l := range m.Layers {
		w := want.Layers[i]
		if l.Kind != w.Kind || l.In != w.In || l.Out != w.Out || l.Shift != w.Shift || l.BiasBits != w.BiasBits ||
			!slices.Equal(l.W, w.W) || !slices.Equal(l.B, w.B) {
			t.Fatalf("layer %d differs from testmodels.Tiny(7)", i)
		}
	}
}
