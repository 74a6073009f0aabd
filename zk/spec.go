package zk

import (
	"fmt"

	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"

	"github.com/veil-project/veil/circuits"
)

// CheckKeyForSpec checks that vk claims to be a key of the circuit that
// spec determines, for batch challenges per proof: circuit version, circuit
// id (the spec's SHA-256), batch, classes and the number of public inputs.
//
// It cannot tell a key made by a sound setup of that circuit from a key
// made for another circuit with the same public-input layout and labelled
// with this circuit's id: what binds a key to its circuit is the setup
// transcript it came from (docs/zk.md, "What a verifier must trust").
func CheckKeyForSpec(vk *VerifyingKey, spec *circuits.Spec, batch int) error {
	id := spec.ID()
	switch {
	case vk.CircuitVersion != CircuitVersion:
		return fmt.Errorf("verifying key is for circuit version %d, this is version %d", vk.CircuitVersion, CircuitVersion)
	case vk.ModelID != ModelID(id):
		return fmt.Errorf("verifying key is for circuit %x, the spec's circuit is %x", vk.ModelID[:8], id[:8])
	case vk.Batch != batch:
		return fmt.Errorf("verifying key proves %d challenges, the registration says %d", vk.Batch, batch)
	case vk.Classes != spec.Classes:
		return fmt.Errorf("verifying key has %d outputs per challenge, the spec %d", vk.Classes, spec.Classes)
	}
	// Public inputs: the commitment, the challenge digest and one output
	// per class per challenge. gnark's count includes one wire per
	// Pedersen commitment of the circuit (its lookup range checks).
	bvk, ok := vk.vk.(*groth16bn254.VerifyingKey)
	if !ok {
		return fmt.Errorf("verifying key is not a BN254 Groth16 key")
	}
	if got, want := bvk.NbPublicWitness()-len(bvk.CommitmentKeys), 2+batch*spec.Classes; got != want {
		return fmt.Errorf("verifying key has %d public inputs, the circuit of the spec has %d", got, want)
	}
	return nil
}
