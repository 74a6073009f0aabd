package trust

import cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"

// addressOf is CometBFT's address of an ed25519 validator key.
func addressOf(pub []byte) []byte { return cmted25519.PubKey(pub).Address() }
