package ledgertest

import (
	"crypto/ed25519"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// FakeDisputes is a dispute verifier for state-machine tests: the first
// byte of the revealed seed chooses the outcome (0: fraud proven, 1: keys
// mismatch, 2: framing, 3: honest answer, anything else: bad evidence).
// It also checks that the ledger handed it the request's evidence: the
// revealed challenges, their positions and one proven row per challenge.
type FakeDisputes struct{}

// CheckDispute implements ledger.DisputeVerifier.
func (FakeDisputes) CheckDispute(e *ledger.DisputeEvidence) (ledgerv1.Code, string) {
	if len(e.Challenges) == 0 || len(e.Challenges) != len(e.Positions) || len(e.Proven) != len(e.Challenges) || len(e.KeysDigest) != 32 || len(e.Spec) == 0 {
		return ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, fmt.Sprintf("the ledger passed %d challenges, %d positions, %d rows", len(e.Challenges), len(e.Positions), len(e.Proven))
	}
	switch e.Seed[0] {
	case 0:
		return ledgerv1.Code_CODE_OK, "fake fraud"
	case 1:
		return ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH, "fake: keys do not match"
	case 2:
		return ledgerv1.Code_CODE_DISPUTE_FRAMING, "fake: the input does not hold the challenges"
	case 3:
		return ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST, "fake: the answer is honest"
	}
	return ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE, "fake: bad evidence"
}

// Signer returns a transaction signer for key on the fixture's chain.
func (f *Fixture) Signer(key ed25519.PrivateKey) ledger.Signer { return f.signer(key) }

// Offer is the server's offer for a model.
func (f *Fixture) Offer(modelID string, price, bond, delay uint64) []byte {
	return must(f.signer(f.Server).Offer(&ledgerv1.ProviderOffer{ModelId: modelID, Endpoint: "127.0.0.1:7443", Price: price, Bond: bond, UnbondingDelayBlocks: delay}))
}

// Transfer moves amount from key's account to another.
func (f *Fixture) Transfer(from ed25519.PrivateKey, to ed25519.PublicKey, amount uint64) []byte {
	return must(f.signer(from).Transfer(&ledgerv1.Transfer{To: to, Amount: amount}))
}

// Unbond starts unbonding amount of the model's stake (signed by the server).
func (f *Fixture) Unbond(modelID string, amount uint64) []byte {
	return must(f.signer(f.Server).Unbond(&ledgerv1.Unbond{ModelId: modelID, Amount: amount}))
}

// Withdraw withdraws the model's released stake (signed by the server).
func (f *Fixture) Withdraw(modelID string) []byte {
	return must(f.signer(f.Server).Withdraw(&ledgerv1.Withdraw{ModelId: modelID}))
}

// DisputeBody is a dispute of a request made by NewRequest, whose
// ciphertexts are the ones its receipt names (see ReceiptBody); outcome is
// FakeDisputes' outcome byte.
func (f *Fixture) DisputeBody(r *Request, outcome byte) *ledgerv1.Dispute {
	seed := make([]byte, 32)
	seed[0] = outcome
	return &ledgerv1.Dispute{
		ModelId: r.ModelID, RequestId: r.ID, SessionSeed: seed, CkksParameters: []byte("fake parameters"),
		InputCiphertext: []byte("input ciphertext " + r.ID), OutputCiphertext: []byte("output ciphertext " + r.ID),
	}
}

// Dispute returns the client-signed dispute of r.
func (f *Fixture) Dispute(r *Request, outcome byte) []byte {
	return must(f.signer(f.Client).Dispute(f.DisputeBody(r, outcome)))
}

// FundedParams are market parameters with small round amounts for tests:
// fees of 10 per transaction and none per byte, the fixture's owner,
// server and client funded with balance each, 100 of stake to serve, a
// collateral of 2× the price (at least 20), half of it slashed for a miss,
// half of a slash to the client, 10% of a payment to the pool, a dispute
// window of 3 blocks and a bond of 30.
func (f *Fixture) FundedParams(deadline, balance uint64, extra ...ed25519.PublicKey) ledger.Params {
	m := ledger.MarketParams{
		DefaultFee: 10, MinProviderStake: 100, MinUnbondingDelayBlocks: 2, CollateralMultiple: 2, MinCollateral: 20,
		MissSlashBps: 5000, SlashToClientBps: 5000, ValidatorShareBps: 1000, DisputeWindowBlocks: 3, DisputeBond: 30,
	}
	for _, k := range append([]ed25519.PublicKey{f.Owner.Public().(ed25519.PublicKey), f.Server.Public().(ed25519.PublicKey), f.Client.Public().(ed25519.PublicKey)}, extra...) {
		m.Genesis = append(m.Genesis, ledger.Allocation{Account: k, Amount: balance})
	}
	return ledger.Params{ProofDeadlineBlocks: deadline, Market: m}
}
