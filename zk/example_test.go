package zk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/consensys/gnark/logger"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// The whole flow on a tiny network of the default model's layer kinds
// (784 -> 4 -> square -> 10, so that the example runs in seconds): the
// owner commits, keys are made (here by a ceremony of one), the server
// proves the outputs on the client's challenge image, and anyone verifies
// against the published commitment and the image.
func Example() {
	logger.Disable() // gnark's own debug lines
	ctx := context.Background()
	m := testmodels.Tiny(1)
	salt, _ := zk.NewSalt()             // kept secret by the model owner
	commitment, _ := zk.Commit(m, salt) // published

	dir, _ := os.MkdirTemp("", "veil-example-") // caches phase 1
	defer os.RemoveAll(dir)
	spec, _ := circuits.SpecOf(m)
	pk, _, err := mpcsetup.SetupOfOne(ctx, spec, 1, dir, nil) // INSECURE: a ceremony of one
	if err != nil {
		panic(err)
	}
	var challenge pixels.Image // revealed by the client
	for i := 300; i < 500; i++ {
		challenge[i] = 200
	}
	prover, _ := zk.NewProver(m, salt, pk)
	proof, err := prover.Prove(ctx, []pixels.Image{challenge})
	if err != nil {
		panic(err)
	}
	proofFile, _ := proof.MarshalBinary()
	exact, _ := m.Forward(challenge[:])
	fmt.Println("proven outputs are the model's:", slices.Equal(proof.Outputs[0], exact))

	// The verifier knows the commitment, the image and the claimed outputs
	// (which the client compares with what it decrypted).
	st := zk.Statement{Commitment: commitment, Digest: zk.ChallengeDigest([]pixels.Image{challenge}), Outputs: proof.Outputs}
	fmt.Println("verifies:", zk.Verify(pk.VK, st, proofFile) == nil)

	// The same weights committed with another salt are another model as far
	// as the proof is concerned.
	otherSalt, _ := zk.NewSalt()
	st.Commitment, _ = zk.Commit(m, otherSalt)
	fmt.Println("another commitment refused:", errors.Is(zk.Verify(pk.VK, st, proofFile), zk.ErrWrongCommitment))
	// Output:
	// proven outputs are the model's: true
	// verifies: true
	// another commitment refused: true
}
