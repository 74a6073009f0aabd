// Package server is Veil's inference service: a gRPC server that holds
// clients' evaluation keys in sessions and evaluates committed models on
// their CKKS ciphertexts.
//
// The server never sees a plaintext image, a decrypted score or a secret
// key: it receives evaluation keys (public material) and ciphertexts, and
// logs only identifiers, sizes and timings.
//
// Resource limits: key bundles are streamed in chunks (the 4 MiB default
// message limit is never raised); sessions are capped in number and in
// bytes, idle ones expire, and the least recently used idle session is
// evicted when a new one does not fit, else the upload fails with
// RESOURCE_EXHAUSTED. Evaluations run on a fixed number of workers; a
// request waits in the queue at most QueueTimeout (or its own deadline).
package server
