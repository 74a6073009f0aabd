package he

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/veil-project/veil/dataset"
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

func TestEncryptedInferenceMatchesPlaintext(t *testing.T) {
	f, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := f.Model
	c, err := NewContext(DefaultParameters)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	net, err := c.Compile(m)
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
