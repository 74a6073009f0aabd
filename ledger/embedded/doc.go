// Package embedded runs the ledger as a single node inside a process: the
// default for `veil serve` and `veil ledger serve`. Transactions submitted
// concurrently are checked and their proofs verified in parallel (on every
// core), then applied in order in blocks, one bbolt commit (one fsync) per
// block. Submit returns only after the block holding the transaction is
// durable, so every acknowledged transaction survives a crash.
package embedded
