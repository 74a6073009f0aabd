// Package zk proves, with Groth16 zk-SNARKs over BN254, that a committed
// fixed-point model (package model) maps a batch of challenge images to
// claimed outputs, and verifies such proofs.
//
// The API that the ledger and the protocol code call is small and stable:
//
//   - [Commit] computes a model commitment (Poseidon2 over BN254 of an
//     architecture descriptor, a secret salt and the packed weights).
//   - [ChallengeDigest] hashes a batch of challenge images, in order.
//   - [Prover] turns (model, salt, proving key, images) into a [Proof].
//   - [Verify] checks a proof against a [VerifyingKey] and a [Statement]
//     (commitment, challenge digest, outputs) and says why it rejects.
//
// Keys come from a multi-party trusted setup (package zk/mpcsetup, which
// this package does not import) and are cached by a [KeyStore]. The
// circuit itself lives in package circuits. docs/zk.md explains the
// statement, the circuit and the soundness argument.
package zk
