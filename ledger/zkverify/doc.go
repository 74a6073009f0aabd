// Package zkverify binds the ledger's ProofVerifier interface to the zk
// package: verifying keys as zk encodes them (zk.VerifyingKey
// MarshalBinary), statements as zk.Statement, proofs as zk proof files, and
// zk's native challenge digest over 28x28 images.
package zkverify
