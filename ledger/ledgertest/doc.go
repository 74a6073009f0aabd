// Package ledgertest has test doubles and transaction builders for tests of
// the ledger and of code that uses it: a deterministic fake proof verifier
// (a proof is valid iff it is the hash of its statement) and a Fixture that
// signs well-formed transactions for a model owner, its server and a client.
package ledgertest
