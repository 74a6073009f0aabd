package zk_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// The whole flow: the owner commits, keys are made (here by a ceremony of
// one), the server proves the outputs on the client's challenge images, and
// anyone verifies against the published commitment and the images.
// (Compiled, not run: the setup takes a minute or two for the default model.)
func Example() {
	ctx := context.Background()
	f, _ := model.Default()
	salt, _ := zk.NewSalt()                   // kept secret by the model owner
	commitment, _ := zk.Commit(f.Model, salt) // published

	spec, _ := circuits.SpecOf(f.Model)
	pk, _, err := mpcsetup.SetupOfOne(ctx, spec, 3, "/tmp/veil-data", nil) // INSECURE: a ceremony of one
	if err != nil {
		panic(err)
	}
	prover, _ := zk.NewProver(f.Model, salt, pk)
	challenges := make([]pixels.Image, 3) // revealed by the client
	proof, _ := prover.Prove(ctx, challenges)
	proofFile, _ := proof.MarshalBinary()

	// The verifier knows the commitment, the images and the claimed outputs
	// (which the client compares with what it decrypted).
	st := zk.Statement{Commitment: commitment, Digest: zk.ChallengeDigest(challenges), Outputs: proof.Outputs}
	switch err := zk.Verify(pk.VK, st, proofFile); {
	case err == nil:
		fmt.Println("OK")
	case errors.Is(err, zk.ErrWrongCommitment):
		fmt.Println("another model answered:", err)
	default:
		fmt.Println("rejected:", err)
	}
}
