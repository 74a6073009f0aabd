// Package e2e holds Veil's end-to-end tests of the verifiable-inference
// protocol: a real gRPC server, the Go client, an embedded ledger that
// verifies real Groth16 proofs, honest and dishonest servers.
package e2e
