// Package federated is collaborative training on pooled private data
// (issue 15): N data owners train one model without showing anyone their
// samples, under multiparty CKKS (he), with every step on the verifier
// ledger (ledger/training.go).
//
// Roles: each [Owner] trains locally on its shard (model.Train, from the
// current model), encrypts its weighted update under the collective public
// key, checks the aggregate it is asked to decrypt (the ledger-recorded sum
// of the ledger-recorded updates of at least min_updates owners) and sends
// decryption shares for it only; the [Coordinator] (the aggregator, which
// may not be an owner) relays the setup, sums the ciphertexts, collects the
// shares and records each step. It never holds a key share: any t owners
// can decrypt, fewer cannot, and it alone cannot. The message flow is gRPC
// (api/veil/federated/v1); [Run] plays every role in one process on an
// embedded ledger.
//
// docs/training.md states the protocol, what each party learns, the
// checks and what is not covered.
package federated
