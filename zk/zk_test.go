package zk

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/veil-project/veil/circuits"
)

// One real Groth16 MPC setup (ceremony of one) on a tiny model, then
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
	data := t.TempDir()
	start := time.Now()
	pk, tr, err := SetupOfOne(ctx, spec, batch, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("setup: %d constraints, domain %d, %v", pk.Constraints(), tr.Domain, time.Since(start))
	if len(tr.Phase1) == 0 || len(tr.Phase2) == 0 {
		t.Fatal("empty transcript")
	}

	salt := Salt{31: 42}
	prover, err := NewProver(m, salt, pk)
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
	com, _ := Commit(m, salt)
	st := Statement{Commitment: com, Digest: ChallengeDigest(imgs), Outputs: proof.Outputs}
	if err := Verify(pk.VK, st, pb); err != nil {
		t.Fatalf("honest proof rejected: %v", err)
	}

	// The verifying key survives encoding, with the same hash.
	vkb, _ := pk.VK.MarshalBinary()
	vk2, err := UnmarshalVerifyingKey(vkb)
	if err != nil || vk2.Hash() != pk.VK.Hash() {
		t.Fatalf("verifying key round trip: %v", err)
	}
	if err := Verify(vk2, st, pb); err != nil {
		t.Fatalf("decoded key rejects: %v", err)
	}
	// Cached keys load and verify too.
	dir := KeyDir(data, ModelID(spec.ID()), batch)
	if err := pk.Save(dir); err != nil {
		t.Fatal(err)
	}
	pkLoaded, err := LoadProvingKey(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := NewProver(m, salt, pkLoaded)
	proofB, err := p2.Prove(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	pbB, _ := proofB.MarshalBinary()
	if err := Verify(pk.VK, st, pbB); err != nil {
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
	patch := func(f func(p *Proof)) []byte {
		p, err := ParseProof(pb)
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
	po, err := NewProver(other, salt, pk)
	if err != nil {
		t.Fatal(err)
	}
	proofO, err := po.Prove(ctx, imgs)
	if err != nil {
		t.Fatal(err)
	}
	pbO, _ := proofO.MarshalBinary()
	expect("proof for another model", Verify(pk.VK, st, pbO), ErrWrongCommitment)
	// ... relabelled with our commitment and outputs: the pairing fails.
	relabelled := func() []byte {
		p, _ := ParseProof(pbO)
		p.Commitment = st.Commitment
		p.Outputs = st.Outputs
		b, _ := p.MarshalBinary()
		return b
	}()
	expect("another model's proof relabelled", Verify(pk.VK, st, relabelled), ErrPairingFailed)

	// One public input changed.
	bad := Statement{Commitment: st.Commitment, Digest: st.Digest, Outputs: [][]int64{append([]int64(nil), st.Outputs[0]...), st.Outputs[1]}}
	bad.Outputs[0][4]++
	expect("statement with one output changed", Verify(pk.VK, bad, pb), ErrPublicInputMismatch)
	expect("proof file and statement with one output changed", Verify(pk.VK, bad, patch(func(p *Proof) { p.Outputs[0][4]++ })), ErrPairingFailed)
	var com2 Commitment
	copy(com2[:], com[:])
	com2[31] ^= 1
	expect("commitment changed in both", Verify(pk.VK, Statement{com2, st.Digest, st.Outputs}, patch(func(p *Proof) { p.Commitment = com2 })), ErrPairingFailed)

	// Corrupted proof files.
	trunc := pb[:len(pb)-10]
	expect("truncated proof file", Verify(pk.VK, st, trunc), ErrBadProofEncoding)
	flipped := append([]byte(nil), pb...)
	flipped[len(flipped)-100] ^= 0x40
	if err := Verify(pk.VK, st, flipped); !errors.Is(err, ErrBadProofEncoding) && !errors.Is(err, ErrPairingFailed) {
		t.Errorf("flipped proof byte: got %v", err)
	}
	expect("not a proof file", Verify(pk.VK, st, []byte("hello")), ErrBadProofEncoding)

	// Keys from another setup.
	pkOther, _, err := SetupOfOne(ctx, spec, batch, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect("verified with another setup's key", Verify(pkOther.VK, st, pb), ErrWrongKey)
	h := pkOther.VK.Hash()
	expect("proof claiming another setup's key", Verify(pkOther.VK, st, patch(func(p *Proof) { p.VKHash = h })), ErrPairingFailed)

	// A challenge digest that does not match the images.
	imgs2 := randomImages(6, batch)
	expect("digest of other images", Verify(pk.VK, Statement{st.Commitment, ChallengeDigest(imgs2), st.Outputs}, pb), ErrWrongDigest)
	d2 := ChallengeDigest(imgs2)
	expect("digest changed in both", Verify(pk.VK, Statement{st.Commitment, d2, st.Outputs}, patch(func(p *Proof) { p.Digest = d2 })), ErrPairingFailed)

	// A wrong witness cannot be proven.
	wrong := [][]int64{append([]int64(nil), st.Outputs[0]...), st.Outputs[1]}
	wrong[0][0] += 1
	if _, err := prover.ProveClaim(ctx, imgs, wrong); err == nil {
		t.Error("proved outputs the model does not give")
	}

	// Concurrent verification.
	errs := VerifyBatch(pk.VK, []Statement{st, st, bad, st}, [][]byte{pb, pbB, pb, trunc})
	if errs[0] != nil || errs[1] != nil || errs[2] == nil || errs[3] == nil {
		t.Errorf("VerifyBatch: %v", errs)
	}
}
