package federated

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Private channels through the aggregator. The setup sends secrets from
// one party to another (Shamir shares of the owners' keys, the commitment
// salt) through the aggregator, which must not read them: each is sealed
// with AES-256-GCM under a key derived (HKDF-SHA256) from the X25519
// shared secret of sender and recipient, whose public keys are on the
// ledger, signed by their owners. The context (training, sender,
// recipient, purpose) is both in the key derivation and the associated
// data, so a sealed message cannot be replayed to another recipient or
// for another purpose.

const sealNonceLen = 12

func channelKey(priv *ecdh.PrivateKey, peer []byte, context string) (cipher.AEAD, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("peer key: %w", err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("key agreement: %w", err)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "veil/federated/channel\x00"+context, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plaintext for the holder of peer's private key.
func seal(priv *ecdh.PrivateKey, peer []byte, context string, plaintext []byte) ([]byte, error) {
	aead, err := channelKey(priv, peer, context)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	nonce := make([]byte, sealNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(context)), nil
}

// errUnseal: the message was not sealed by that peer for this context.
var errUnseal = errors.New("sealed message does not open: wrong sender, recipient or purpose, or altered")

// unseal decrypts a message sealed by peer for us.
func unseal(priv *ecdh.PrivateKey, peer []byte, context string, sealed []byte) ([]byte, error) {
	aead, err := channelKey(priv, peer, context)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	if len(sealed) < sealNonceLen+aead.Overhead() {
		return nil, errUnseal
	}
	out, err := aead.Open(nil, sealed[:sealNonceLen], sealed[sealNonceLen:], []byte(context))
	if err != nil {
		return nil, errUnseal
	}
	return out, nil
}

func sealContext(trainingID, purpose string, from, to int) string {
	return fmt.Sprintf("%s\x00%s\x00%d\x00%d", trainingID, purpose, from, to)
}
