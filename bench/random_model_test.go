package bench

import (
	"context"
	"math"
	"testing"

	"github.com/veil-project/veil/he"
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
