package he

import (
	"context"
	"math"
	"testing"
)

// The local round trip decrypts what the network computes, goes through
// the wire encodings, and accounts for every stage.
func TestLocalSessionRoundTrip(t *testing.T) {
	f := getFix(t)
	sess, err := NewLocalSession(f.net)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Bundle) != len(f.wire) || sess.KeyGen <= 0 || sess.KeyLoad <= 0 {
		t.Fatalf("bundle %d bytes (want %d), keygen %v, load %v", len(sess.Bundle), len(f.wire), sess.KeyGen, sess.KeyLoad)
	}
	m := mustDefault(t)
	set, imgs := testImages(t, 3)
	rt, err := sess.RoundTrip(context.Background(), append(imgs, nil)) // block 3 left empty
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Scores) != f.net.Layout().Blocks || rt.InputBytes != len(f.ct) || rt.OutputBytes == 0 {
		t.Fatalf("%d blocks of scores, input %d bytes (want %d), output %d", len(rt.Scores), rt.InputBytes, len(f.ct), rt.OutputBytes)
	}
	for i, img := range imgs {
		fixed, err := m.Forward(img)
		if err != nil {
			t.Fatal(err)
		}
		for r, y := range fixed {
			if d := math.Abs(rt.Scores[i][r] - float64(y)*m.Scale()); d > 0.5 {
				t.Fatalf("image %d (label %d) score %d: decrypted %.3f, fixed point %.3f", i, set.Labels[i], r, rt.Scores[i][r], float64(y)*m.Scale())
			}
		}
	}
	var stages int
	for _, st := range []string{StageMatrix1, StageSum1, StageSquare, StageRescale, StageMatrix2, StageSum2, StageRerandomize} {
		if _, ok := rt.Stages[st]; ok {
			stages++
		}
	}
	if stages != 7 || rt.Evaluate > rt.Server || rt.Total() != rt.Encrypt+rt.Server+rt.Decrypt {
		t.Fatalf("stages %d of 7, evaluate %v within server %v, total %v", stages, rt.Evaluate, rt.Server, rt.Total())
	}
	if _, err := sess.RoundTrip(context.Background(), make([][]uint8, 9)); err == nil {
		t.Fatal("9 images in 8 blocks accepted")
	}
}
