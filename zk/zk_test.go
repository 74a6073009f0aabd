package zk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/zk"
)

// Keys for a tiny model (a ceremony of one, zk/mpcsetup), then
// proving, verifying and every rejection the protocol relies on.
func TestSetupProveVerifyAndRejections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real setup")
	}
	ctx := context.Background()
	m := tinyModel(1)
	spec, err := circuits.SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 2
	start := time.Now()
	data := t.TempDir()
	pk := testKeys(t, spec, batch, data)
	t.Logf("setup: %d constraints, %v", pk.Constraints(), time.Since(start))

	salt := zk.Salt{31: 42}
	prover, err := zk.NewProver(m, salt, pk)
	if err != nil {
		t.Fatal(err)
	}
	imgs := randomImages(5, batch)
	start = time.Now()
	proof, err := prover.Prove(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prove: %v, Groth16 proof %d bytes", time.Since(start), len(proof.Groth16))
	if len(proof.Groth16) > 300 {
		t.Fatalf("proof is %d bytes", len(proof.Groth16))
	}
	for i, img := range imgs {
		want, _ := m.Forward(img[:])
		for j := range want {
			if proof.Outputs[i][j] != want[j] {
				t.Fatalf("proof output %d/%d = %d, model gives %d", i, j, proof.Outputs[i][j], want[j])
			}
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

	// The verifying key survives encoding, with the same hash.
	vkb, _ := pk.VK.MarshalBinary()
	vk2, err := zk.UnmarshalVerifyingKey(vkb)
	if err != nil || vk2.Hash() != pk.VK.Hash() {
		t.Fatalf("verifying key round trip: %v", err)
	}
	if err := zk.Verify(vk2, st, pb); err != nil {
		t.Fatalf("decoded key rejects: %v", err)
	}
	// Cached keys load and verify too, through the old loader and the key store.
	store := zk.KeyStore{DataDir: t.TempDir()}
	dir, err := store.Save(pk, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zk.LoadProvingKey(dir, spec); err != nil {
		t.Fatal(err)
	}
	pkLoaded, err := store.Load(spec, batch, "")
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := zk.NewProver(m, salt, pkLoaded)
	proofB, err := p2.Prove(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	pbB, _ := proofB.MarshalBinary()
	if err := zk.Verify(pk.VK, st, pbB); err != nil {
		t.Fatalf("proof from cached keys rejected: %v", err)
	}

	expect := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		} else {
			t.Logf("%s: rejected: %v", name, err)
		}
	}
	patch := func(f func(p *zk.Proof)) []byte {
		p, err := zk.ParseProof(pb)
		if err != nil {
			t.Fatal(err)
		}
		f(p)
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// A proof for another model: same architecture, other weights.
	other := tinyModel(1)
	other.Layers[2].W = append([]int32(nil), other.Layers[2].W...)
	other.Layers[2].W[7] /= 2
	po, err := zk.NewProver(other, salt, pk)
	if err != nil {
		t.Fatal(err)
	}
	proofO, err := po.Prove(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	pbO, _ := proofO.MarshalBinary()
	expect("proof for another model", zk.Verify(pk.VK, st, pbO), zk.ErrWrongCommitment)
	// ... relabelled with our commitment and outputs: the pairing fails.
	relabelled := func() []byte {
		p, _ := zk.ParseProof(pbO)
		p.Commitment = st.Commitment
		p.Outputs = st.Outputs
		b, _ := p.MarshalBinary()
		return b
	}()
	expect("another model's proof relabelled", zk.Verify(pk.VK, st, relabelled), zk.ErrPairingFailed)

	// One public input changed.
	bad := zk.Statement{Commitment: st.Commitment, Digest: st.Digest, Outputs: [][]int64{append([]int64(nil), st.Outputs[0]...), st.Outputs[1]}}
	bad.Outputs[0][4]++
	expect("statement with one output changed", zk.Verify(pk.VK, bad, pb), zk.ErrPublicInputMismatch)
	expect("proof file and statement with one output changed", zk.Verify(pk.VK, bad, patch(func(p *zk.Proof) { p.Outputs[0][4]++ })), zk.ErrPairingFailed)
	var com2 zk.Commitment
	copy(com2[:], com[:])
	com2[31] ^= 1
	expect("commitment changed in both", zk.Verify(pk.VK, zk.Statement{com2, st.Digest, st.Outputs}, patch(func(p *zk.Proof) { p.Commitment = com2 })), zk.ErrPairingFailed)

	// Corrupted proof files.
	trunc := pb[:len(pb)-10]
	expect("truncated proof file", zk.Verify(pk.VK, st, trunc), zk.ErrBadProofEncoding)
	flipped := append([]byte(nil), pb...)
	flipped[len(flipped)-100] ^= 0x40
	if err := zk.Verify(pk.VK, st, flipped); !errors.Is(err, zk.ErrBadProofEncoding) && !errors.Is(err, zk.ErrPairingFailed) {
		t.Errorf("flipped proof byte: got %v", err)
	}
	expect("not a proof file", zk.Verify(pk.VK, st, []byte("hello")), zk.ErrBadProofEncoding)

	// Keys from another setup.
	pkOther := testKeys(t, spec, batch, data)
	expect("verified with another setup's key", zk.Verify(pkOther.VK, st, pb), zk.ErrWrongKey)
	h := pkOther.VK.Hash()
	expect("proof claiming another setup's key", zk.Verify(pkOther.VK, st, patch(func(p *zk.Proof) { p.VKHash = h })), zk.ErrPairingFailed)

	// A challenge digest that does not match the images.
	imgs2 := randomImages(6, batch)
	expect("digest of other images", zk.Verify(pk.VK, zk.Statement{st.Commitment, zk.ChallengeDigest(imgs2), st.Outputs}, pb), zk.ErrWrongDigest)
	d2 := zk.ChallengeDigest(imgs2)
	expect("digest changed in both", zk.Verify(pk.VK, zk.Statement{st.Commitment, d2, st.Outputs}, patch(func(p *zk.Proof) { p.Digest = d2 })), zk.ErrPairingFailed)

	// A wrong witness cannot be proven.
	wrong := [][]int64{append([]int64(nil), st.Outputs[0]...), st.Outputs[1]}
	wrong[0][0] += 1
	if _, err := prover.ProveClaim(ctx, imgs, wrong); err == nil {
		t.Error("proved outputs the model does not give")
	}

	// Concurrent verification.
	errs := zk.VerifyBatch(pk.VK, []zk.Statement{st, st, bad, st}, [][]byte{pb, pbB, pb, trunc})
	if errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] == nil {
		t.Errorf("VerifyBatch: %v", errs)
	}
}
