// Package protocol holds the roles of Veil's verifiable-inference
// protocol, the parts that tie the HE service (server, client), the zk
// prover and verifier (zk) and the verifier ledger (ledger) together: the
// receipt recorder and the prover service on the model owner's side, the
// client's verifier, the third-party audit, deployment (commit, set up,
// register) and disputes. server and client know nothing of the ledger;
// this package is where a request, its receipt, its proof and its verdict
// meet. docs/protocol.md describes the protocol and its threat model.
package protocol
