package he

import (
	"context"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
	"github.com/tuneinsight/lattigo/v6/schemes/ckks"

	"github.com/veil-project/veil/model"
)

// decryptAllSlots returns every slot of a result, not just the scores: what
// a client (or anyone with its key) could read from the output ciphertext.
func decryptAllSlots(t *testing.T, sk *SecretKey, ct *Ciphertext) []float64 {
	t.Helper()
	pt := rlwe.NewDecryptor(sk.params.cp, sk.sk).DecryptNew(ct.ct)
	v := make([]float64, sk.params.lit.Slots())
	if err := ckks.NewEncoder(sk.params.cp).Decode(pt, v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOutputRevealsOnlyTheScores: after the evaluation, every slot of a
// block except its scores decrypts to zero (without flooding: evaluation
// noise below 0.05, rms 0.002; before the last matrix used the plain
// diagonal method these slots held partial sums of up to 28)
// or to flooding noise (with it: centred, of the flooding scale, and
// uncorrelated with the evaluation's intermediate values), so the result
// leaks no partial sums of the last layer and no hidden units.
func TestOutputRevealsOnlyTheScores(t *testing.T) {
	m, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	_, imgs := testImages(t, 8)
	for _, flood := range []float64{0, DefaultEvaluationSettings.LogFloodSigma} {
		settings := DefaultEvaluationSettings
		settings.LogFloodSigma = flood
		c, err := NewParameters(DefaultParametersLiteral)
		if err != nil {
			t.Fatal(err)
		}
		net, err := c.Compile(m.Model, settings)
		if err != nil {
			t.Fatal(err)
		}
		sk := c.GenSecretKey()
		k, err := sk.GenEvaluationKeys(net.GaloisElements())
		if err != nil {
			t.Fatal(err)
		}
		wire, _ := k.MarshalBinary()
		keys, err := c.UnmarshalEvaluationKeys(wire, net.GaloisElements())
		if err != nil {
			t.Fatal(err)
		}
		ct, err := sk.Encrypt(net.Layout(), imgs)
		if err != nil {
			t.Fatal(err)
		}
		out, err := net.Evaluate(context.Background(), ct, keys)
		if err != nil {
			t.Fatal(err)
		}
		v := decryptAllSlots(t, sk, out)
		lay := net.Layout()
		var maxOther, sum, sumSq, maxScore float64
		n := 0
		for b := 0; b < lay.Blocks; b++ {
			for j := 0; j < lay.BlockSize; j++ {
				x := v[b*lay.BlockSize+j]
				if j < lay.Outputs {
					maxScore = math.Max(maxScore, math.Abs(x))
					continue
				}
				maxOther = math.Max(maxOther, math.Abs(x))
				sum += x
				sumSq += x * x
				n++
			}
		}
		mean, rms := sum/float64(n), math.Sqrt(sumSq/float64(n))
		t.Logf("flooding 2^%g: largest score %.3f; other slots: max %.3g, mean %.3g, rms %.3g", flood, maxScore, maxOther, mean, rms)
		if maxScore < 1 {
			t.Fatalf("scores of at most %.3f: the evaluation is broken", maxScore)
		}
		if flood == 0 {
			if maxOther > 0.05 {
				t.Fatalf("a non-score slot decrypts to %.3g without flooding: the output carries more than the scores", maxOther)
			}
			continue
		}
		// With flooding the other slots are noise: no bias, and no slot
		// far beyond the noise's own spread (a leaked partial sum would be
		// of the scores' size, hundreds of times the rms here).
		if math.Abs(mean) > 4*rms/math.Sqrt(float64(n)) || maxOther > 8*rms || rms > 0.05 {
			t.Fatalf("non-score slots: mean %.3g, max %.3g, rms %.3g: not flooding noise", mean, maxOther, rms)
		}
	}
}
