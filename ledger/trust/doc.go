// Package trust reads a verifier ledger without trusting the node that
// answers. A party pins an Anchor: the chain id and either the key of a
// single (embedded) node, or the genesis validator set of a replicated
// (CometBFT) chain. A Reader then checks every log head it uses (signed by
// the pinned node key, or by more than two thirds of the validators'
// voting power through a CometBFT commit whose header carries the head's
// app hash), and every entry it returns (a Merkle inclusion proof against
// that head, and the ledger's own stateless transaction checks).
//
// Records a node reports from its state (a request's status, a model's
// record) are hints only: whoever must not trust the node reads the
// transactions behind them through a Reader.
package trust
