package he

import (
	"context"
	"math"
	"testing"

	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
)

// A model whose hidden layer (8) is narrower than its output (10, padded to
// 16) takes the other branch of the last matrix's layout.
func TestSmallModelMatchesPlaintext(t *testing.T) {
	m, err := testmodels.Small()
	if err != nil {
		t.Fatal(err)
	}
	f := getFix(t)
	net, err := f.ctx.Compile(m, DefaultEvaluationSettings)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := f.sk.GenEvaluationKeys(net.GaloisElements())
	w, _ := k.MarshalBinary()
	keys, err := f.ctx.UnmarshalEvaluationKeys(w, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	set, imgs := testImages(t, 8)
	ct, _ := f.sk.Encrypt(net.Layout(), imgs)
	out, err := net.Evaluate(context.Background(), ct, keys)
	if err != nil {
		t.Fatal(err)
	}
	scores, _ := f.sk.Decrypt(net.Layout(), out)
	correct := 0
	for b, img := range imgs {
		fixed, _ := m.Forward(img)
		for r := range fixed {
			if d := math.Abs(scores[b][r] - float64(fixed[r])*m.Scale()); d > 0.25 {
				t.Fatalf("block %d score %d: decrypted %.3f, fixed point %.3f", b, r, scores[b][r], float64(fixed[r])*m.Scale())
			}
		}
		if model.Class(fixed) == int(set.Labels[b]) {
			correct++
		}
	}
	t.Logf("small model: %d/8 correct, %d rotation keys", correct, len(net.GaloisElements()))
}
