package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// The demo's trusted setup on the ledger (`veil demo`, unless
// --ceremony=false): the node's operator, the model owner (the honest
// provider) and the client each contribute to phase 1 (the chain's, at the
// model circuit's domain) and to the circuit's phase 2; the node verifies
// each contribution before it is accepted and derives the verifying key at
// the seal, and every provider registers that key.

// CeremonyReport says what the ledger ceremony did.
type CeremonyReport struct {
	ID               string   `json:"id"`
	Domain           uint64   `json:"phase1_domain"`
	Phase1           []string `json:"phase1_contributions"`
	Phase2           []string `json:"phase2_contributions"`
	VerifyingKeyHash string   `json:"verifying_key_hash"`
	Seconds          float64  `json:"seconds"`
	// Trust says what the demo's ceremony is worth: a real ceremony's
	// mechanism and checks, not a split of trust.
	Trust string `json:"trust"`
}

// ceremonyTrust is what the demo's ceremony shows and what it does not.
const ceremonyTrust = "all three run in this process, which draws every secret and zeroes it after use: this shows the mechanism and every check the node makes, not a split of trust; for that, contributors run `veil setup contribute --ledger` on their own machines"

// ceremonyFunds is what each contributor gets at genesis to pay the
// ceremony's fees (1 unit per byte: phase 1 at 2^17 is 25 MB).
const ceremonyFunds = 100 * ledger.Unit

// ceremonyParams opens a phase 1 fitting m's circuit on the demo chain
// (three contributions per phase) and funds the contributors.
func ceremonyParams(p *ledger.Params, m *model.Model, contributors ...ed25519.PublicKey) error {
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return err
	}
	r, err := zk.Compile(spec, protocol.DefaultBlocks-1)
	if err != nil {
		return err
	}
	// Two distinct contributors: phase 2 does not count its opener (the
	// model owner), which leaves the operator and the client.
	p.Ceremony = ledger.CeremonyParams{Phase1Domain: zk.Domain(r), MinContributions: 2}
	for _, c := range contributors {
		found := false
		for i := range p.Market.Genesis {
			if string(p.Market.Genesis[i].Account) == string(c) {
				p.Market.Genesis[i].Amount += ceremonyFunds
				found = true
			}
		}
		if !found {
			p.Market.Genesis = append(p.Market.Genesis, ledger.Allocation{Account: c, Amount: ceremonyFunds})
		}
	}
	return nil
}

func runCeremony(ctx context.Context, node *embedded.Node, chain string, m *model.Model, operator, owner, client ed25519.PrivateKey, say func(string, ...any)) (*protocol.CeremonyResult, error) {
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	sig := func(k ed25519.PrivateKey) ledger.Signer { return ledger.Signer{ChainID: chain, Key: k} }
	say("trusted setup on the ledger: 3 contributors (node operator, model owner, client), each contribution verified by the node\n")
	say("  (%s)\n", ceremonyTrust)
	return protocol.RunCeremony(ctx, node, protocol.CeremonyConfig{
		Contributors: []ledger.Signer{sig(operator), sig(owner), sig(client)},
		Names:        []string{"node operator", "model owner", "client"},
		Opener:       sig(owner), ID: m.Name + "-b3", Spec: spec, Batch: protocol.DefaultBlocks - 1,
		Progress: func(format string, a ...any) { say("  "+format+"\n", a...) },
	})
}

func ceremonyReport(cr *protocol.CeremonyResult, d time.Duration) *CeremonyReport {
	r := &CeremonyReport{ID: cr.Record.CeremonyId, VerifyingKeyHash: hex.EncodeToString(cr.Record.VerifyingKeyHash), Seconds: d.Seconds(), Trust: ceremonyTrust, Domain: cr.Record.Domain}
	for _, c := range cr.Phase1 {
		r.Phase1 = append(r.Phase1, hex.EncodeToString(c.Hash[:]))
	}
	for _, c := range cr.Phase2 {
		r.Phase2 = append(r.Phase2, hex.EncodeToString(c.Hash[:]))
	}
	return r
}
