package cometbft

import (
	"crypto/ed25519"
	"testing"

	"github.com/cometbft/cometbft/types"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// The genesis app state carries every consensus parameter, fees and
// balances included, and a validator refuses a genesis whose parameters
// are invalid rather than guess.
func TestGenesisAppStateRoundTrips(t *testing.T) {
	p := ledger.Params{ProofDeadlineBlocks: 40, Market: ledger.MarketDefaults()}
	p.Market.Genesis = []ledger.Allocation{{Account: ledgertest.Key("a").Public().(ed25519.PublicKey), Amount: 123 * ledger.Unit}}
	st, err := genesisAppState(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := paramsOf(&types.GenesisDoc{AppState: st})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(p) {
		t.Fatalf("parameters changed through the genesis file:\n%s", st)
	}
	// A genesis written before the market (only the proof deadline) still
	// reads, as a chain without fees.
	old, err := paramsOf(&types.GenesisDoc{AppState: []byte(`{"proof_deadline_blocks": 60}`)})
	if err != nil || !old.Equal(ledger.Params{ProofDeadlineBlocks: 60}) {
		t.Fatalf("an older genesis: %+v, %v", old, err)
	}
	for _, bad := range []string{`{"proof_deadline_blocks": 0}`, `{"proof_deadline_blocks": 5, "slash_to_client_bps": 20000}`, `{"proof_deadline_blocks": 5, "bribe": 1}`, `[]`} {
		if _, err := paramsOf(&types.GenesisDoc{AppState: []byte(bad)}); err == nil {
			t.Errorf("genesis app state %s accepted", bad)
		}
	}
}
