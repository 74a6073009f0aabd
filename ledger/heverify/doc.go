// Package heverify binds the ledger's DisputeVerifier interface to the he
// package: a fraud proof is checked by rebuilding the session's key bundle
// from its revealed seed (he.Parameters.KeysFromSeed) and comparing its
// SHA-256 with the digest the receipt names, decrypting the input
// ciphertext to check that the challenge blocks hold the revealed
// challenges in a well-formed fresh encryption (no framing), and decrypting
// the output to compare the challenge blocks' scores with the proven
// outputs in integer units. Every decryption is he.SecretKey.DecryptFixed:
// integer arithmetic only, so every node reaches the same outcome. The
// ledger itself does not import Lattigo; nodes pass New() as their
// ledger.Options.Disputes.
package heverify
