package he

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
)

func testImages(t testing.TB, n int) (*dataset.Set, [][]uint8) {
	t.Helper()
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := dataset.LoadTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	imgs := make([][]uint8, n)
	for i := range imgs {
		imgs[i] = s.Images[i][:]
	}
	return s, imgs
}

// Both committed models (the demo runs the compact one): decrypted scores
// within 0.25 of the plaintext ones, half the protocol's tolerance.
func TestEncryptedInferenceMatchesPlaintext(t *testing.T) {
	for _, name := range []string{"default", "compact"} {
		t.Run(name, func(t *testing.T) {
			f, err := model.Committed(name)
			if err != nil {
				t.Fatal(err)
			}
			encryptedMatchesPlaintext(t, f.Model)
		})
	}
}

func encryptedMatchesPlaintext(t *testing.T, m *model.Model) {
	c, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	net, err := c.Compile(m, DefaultEvaluationSettings)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compile %v, %d Galois elements", time.Since(t0), len(net.GaloisElements()))
	sk := c.GenSecretKey()
	t0 = time.Now()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keygen %v", time.Since(t0))
	wire, err := keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("key bundle %d bytes", len(wire))
	skeys, err := c.UnmarshalEvaluationKeys(wire, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	set, imgs := testImages(t, net.Layout().Blocks)
	ct, err := sk.Encrypt(net.Layout(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	ctw, _ := ct.MarshalBinary()
	t.Logf("input ciphertext %d bytes", len(ctw))
	in, err := c.UnmarshalCiphertext(ctw)
	if err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	out, err := net.Evaluate(context.Background(), in, skeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("evaluate %v", time.Since(t0))
	outw, _ := out.MarshalBinary()
	back, err := c.UnmarshalCiphertext(outw)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output ciphertext %d bytes", len(outw))
	scores, err := sk.Decrypt(net.Layout(), back)
	if err != nil {
		t.Fatal(err)
	}
	deq := m.Dequantize()
	var maxErr float64
	for b, img := range imgs {
		want := deq.Forward(model.PixelsToInput(img))
		fixed, _ := m.Forward(img)
		for r := range want {
			maxErr = math.Max(maxErr, math.Abs(want[r]-scores[b][r]))
		}
		if model.Class(scores[b]) != model.Class(fixed) {
			t.Errorf("block %d: encrypted class %d, plaintext class %d (label %d)", b, model.Class(scores[b]), model.Class(fixed), set.Labels[b])
		}
	}
	t.Logf("max |encrypted - float| = %.2e", maxErr)
	if maxErr > 0.25 {
		t.Fatalf("encrypted scores differ from plaintext scores by %.3g", maxErr)
	}
}

func TestCompilePerBlock(t *testing.T) {
	f := getFix(t)
	m := mustDefault(t)
	other := testmodels.Perturbed(m, 20)
	net, err := f.ctx.CompilePerBlock([]*model.Model{m, other}, DefaultEvaluationSettings)
	if err != nil {
		t.Fatal(err)
	}
	if len(net.GaloisElements()) != len(f.net.GaloisElements()) {
		t.Fatalf("mixed network needs %d keys, the honest one %d", len(net.GaloisElements()), len(f.net.GaloisElements()))
	}
	_, imgs := testImages(t, 8)
	ct, _ := f.sk.Encrypt(net.Layout(), imgs)
	out, err := net.Evaluate(context.Background(), ct, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	scores, _ := f.sk.Decrypt(net.Layout(), out)
	for b, img := range imgs {
		want := []*model.Model{m, other}[b%2].Dequantize().Forward(model.PixelsToInput(img))
		for r := range want {
			if d := math.Abs(want[r] - scores[b][r]); d > 0.25 {
				t.Fatalf("block %d score %d: %.3f, want %.3f from model %d", b, r, scores[b][r], want[r], b%2)
			}
		}
	}
	if _, err := f.ctx.CompilePerBlock(nil, DefaultEvaluationSettings); err == nil {
		t.Fatal("compiled no model")
	}
}
