package zk_test

import (
	"context"
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/zk"
)

// The verifiable path on a general network (polynomial activations): a
// setup of one, a proof of the fixed-point scores, verification, and the
// rejection of other scores.
func TestProveGeneralNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real setup")
	}
	m, err := testmodels.Poly(4)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := circuits.SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	pk := testKeys(t, spec, 1, t.TempDir())
	t.Logf("784-6-relu2-5-relu2-10, batch 1: %d constraints", pk.Constraints())
	salt := zk.Salt{31: 7}
	prover, err := zk.NewProver(m, salt, pk)
	if err != nil {
		t.Fatal(err)
	}
	imgs := randomImages(9, 1)
	proof, err := prover.Prove(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Forward(imgs[0][:])
	for j := range want {
		if proof.Outputs[0][j] != want[j] {
			t.Fatalf("proof output %d = %d, model gives %d", j, proof.Outputs[0][j], want[j])
		}
	}
	pb, err := proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	com, _ := zk.Commit(m, salt)
	st := zk.Statement{Commitment: com, Digest: zk.ChallengeDigest(imgs), Outputs: proof.Outputs}
	if err := zk.Verify(pk.VK, st, pb); err != nil {
		t.Fatalf("honest proof rejected: %v", err)
	}
	st.Outputs = [][]int64{append([]int64(nil), proof.Outputs[0]...)}
	st.Outputs[0][0]++
	if err := zk.Verify(pk.VK, st, pb); err == nil {
		t.Fatal("a proof verified for other scores")
	}
}
