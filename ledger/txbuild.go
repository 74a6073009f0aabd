package ledger

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Signer builds and signs the transactions of one party on one chain. It
// is the only place outside tests where transaction bodies are assembled,
// so every party encodes them the same way the ledger checks them.
type Signer struct {
	ChainID string
	Key     ed25519.PrivateKey
}

// Public returns the signer's public key.
func (s Signer) Public() ed25519.PublicKey { return s.Key.Public().(ed25519.PublicKey) }

func (s Signer) sign(body *ledgerv1.TxBody) ([]byte, error) {
	if len(s.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("sign transaction: no ed25519 key")
	}
	body.ChainId = s.ChainID
	return SignTx(s.Key, body)
}

// RegisterModel signs m as its owner (s), after the server key co-signs
// it: m.ServerKey and m.ServerSignature are set from server.
func (s Signer) RegisterModel(m *ledgerv1.RegisterModel, server ed25519.PrivateKey) ([]byte, error) {
	if len(server) != ed25519.PrivateKeySize {
		return nil, errors.New("register model: no server key")
	}
	m.ServerKey = server.Public().(ed25519.PublicKey)
	d := ServerConsentDigest(s.ChainID, s.Public(), m)
	m.ServerSignature = ed25519.Sign(server, d[:])
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_RegisterModel{RegisterModel: m}})
}

// Receipt signs an inference receipt (s is the model's server key).
func (s Signer) Receipt(r *ledgerv1.InferenceReceipt) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_InferenceReceipt{InferenceReceipt: r}})
}

// Reveal signs a challenge reveal (s is the request's client key).
func (s Signer) Reveal(r *ledgerv1.ChallengeReveal) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeReveal{ChallengeReveal: r}})
}

// Proof signs a challenge proof (s is the model's server key).
func (s Signer) Proof(p *ledgerv1.ChallengeProof) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: p}})
}

// Verdict signs a verdict (s is the request's client key).
func (s Signer) Verdict(v *ledgerv1.Verdict) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Verdict{Verdict: v}})
}

// Setup signs a setup contribution record.
func (s Signer) Setup(c *ledgerv1.SetupContribution) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_SetupContribution{SetupContribution: c}})
}

// ParseTx is DecodeTx with an error: it checks a transaction the way every
// node does before looking at the state (encoding, signature, chain id,
// field shapes). Parties use it on every transaction they receive or read
// from the log, so that they never accept one the ledger would refuse.
func ParseTx(chainID string, raw []byte) (*Tx, error) {
	tx, rj := DecodeTx(chainID, raw)
	if rj != nil {
		return nil, fmt.Errorf("transaction %x: %w", TxHash(raw), rj)
	}
	return tx, nil
}

// Transfer signs a transfer from s's account.
func (s Signer) Transfer(t *ledgerv1.Transfer) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Transfer{Transfer: t}})
}

// Offer signs a provider offer (s is the model's server key).
func (s Signer) Offer(o *ledgerv1.ProviderOffer) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ProviderOffer{ProviderOffer: o}})
}

// Unbond signs an unbond of offer stake (s is the model's server key).
func (s Signer) Unbond(u *ledgerv1.Unbond) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Unbond{Unbond: u}})
}

// Withdraw signs a withdrawal of released stake (s is the model's server key).
func (s Signer) Withdraw(w *ledgerv1.Withdraw) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Withdraw{Withdraw: w}})
}

// Dispute signs a dispute (s is the request's client key).
func (s Signer) Dispute(d *ledgerv1.Dispute) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Dispute{Dispute: d}})
}
