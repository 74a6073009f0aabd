// Package client is the Go client of Veil's inference service. A client
// keeps its CKKS session seed, from which its secret key and its whole key
// bundle derive (he.Parameters.KeysFromSeed), to itself (in a 0600 file
// under its data directory), uploads its evaluation keys once per session,
// and sends encrypted images.
//
// Conn is the thin gRPC layer; Classifier adds key management: keys are
// generated once per (server, model, parameters), kept under the data
// directory, and the session is reused while the server keeps it alive.
package client
