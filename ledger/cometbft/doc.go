// Package cometbft replicates the ledger with CometBFT (v1, ABCI 2.0): App
// is the ABCI application around the same deterministic state machine the
// embedded driver uses, Node runs a CometBFT validator with App in process,
// and WriteTestnet writes the home directories of a localhost testnet.
//
// Consensus rules: CheckTx runs every check against the committed state
// (proofs included, results cached); PrepareProposal keeps only the
// transactions that apply in order; ProcessProposal rejects a proposal with
// any transaction that does not apply (so a validator that proposes an
// invalid proof gets no votes from honest ones); FinalizeBlock applies the
// block and returns the app hash (log size, log root, state hash); Commit
// makes it durable with one fsync.
package cometbft
