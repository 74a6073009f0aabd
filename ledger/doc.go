// Package ledger is Veil's verifier ledger: a deterministic state machine
// over signed transactions (model registrations, setup contributions,
// inference receipts, challenge reveals, Groth16 challenge proofs and
// verdicts), an RFC 6962 Merkle log of every accepted transaction with signed
// checkpoints, and the bbolt store both drivers persist it in.
//
// The state machine knows nothing about transport or time: a driver opens a
// Block on a Store, applies transaction bytes in order (each one accepted or
// rejected with a Code, all-or-nothing), and commits the block with a single
// fsync. Two drivers use it: ledger/embedded (a single node inside a process)
// and ledger/cometbft (an ABCI 2.0 application replicated by CometBFT).
// Every node verifies every proof through a ProofVerifier before accepting
// it; ledger/zkverify binds that interface to the zk package.
package ledger
