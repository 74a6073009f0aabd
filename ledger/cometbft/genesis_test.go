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

// FuzzGenesisAppState: a genesis file's app state (read from disk by every
// validator) never panics the parser, and whatever it accepts is valid
// parameters that round-trip.
func FuzzGenesisAppState(f *testing.F) {
	st, _ := genesisAppState(ledger.Params{ProofDeadlineBlocks: 40, Market: ledger.MarketDefaults()})
	for _, s := range [][]byte{st, []byte(`{"proof_deadline_blocks": 60}`), []byte(`{"fees": [{"tx": "x"}]}`), []byte(`null`), nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, state []byte) {
		p, err := paramsOf(&types.GenesisDoc{AppState: state})
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted invalid parameters: %v", err)
		}
		again, err := genesisAppState(p)
		if err != nil {
			t.Fatal(err)
		}
		if q, err := paramsOf(&types.GenesisDoc{AppState: again}); err != nil || !q.Equal(p) {
			t.Fatalf("parameters do not round-trip: %v", err)
		}
	})
}
