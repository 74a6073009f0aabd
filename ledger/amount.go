package ledger

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ParseAmount reads an amount of VEIL ("12", "0.5", "0.000001") into the
// chain's smallest unit without floating point.
func ParseAmount(s string) (uint64, error) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" || len(frac) > 6 || strings.HasPrefix(whole, "-") {
		return 0, fmt.Errorf("amount %q: want VEIL with at most 6 decimals", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %v", s, err)
	}
	f := uint64(0)
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("amount %q: %v", s, err)
		}
	}
	if w > MaxSupply/Unit {
		return 0, fmt.Errorf("amount %q exceeds the maximum supply", s)
	}
	return w*Unit + f, nil
}

// FormatAmount prints an amount in VEIL with all 6 decimals.
func FormatAmount(v uint64) string { return fmt.Sprintf("%d.%06d", v/Unit, v%Unit) }

// ParseAllocations reads genesis balances written KEY=AMOUNT (KEY an
// ed25519 public key in hex, AMOUNT in VEIL).
func ParseAllocations(fs []string) ([]Allocation, error) {
	var out []Allocation
	for _, f := range fs {
		k, a, ok := strings.Cut(f, "=")
		key, err := hex.DecodeString(k)
		if !ok || err != nil || len(key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%q: want KEY=AMOUNT with KEY an ed25519 public key in hex", f)
		}
		amt, err := ParseAmount(a)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, Allocation{Account: key, Amount: amt})
	}
	return out, nil
}

// MarketParamsWith are the market's defaults with genesis allocations.
func MarketParamsWith(deadline uint64, funds []Allocation) Params {
	m := MarketDefaults()
	m.Genesis = funds
	return Params{ProofDeadlineBlocks: deadline, Market: m}
}

// ChainParams are the parameters of a new chain: DefaultParams-like with
// the market's fees and rules when market is set or there are genesis
// balances, and with ceremony, when not nil, open at genesis. With
// neither they are zero (a new ledger takes DefaultParams, an existing one
// keeps its own).
func ChainParams(market bool, funds []Allocation, ceremony *CeremonyParams) Params {
	var p Params
	if market || len(funds) > 0 {
		p = MarketParamsWith(DefaultParams.ProofDeadlineBlocks, funds)
	}
	if ceremony != nil {
		if p.IsZero() {
			p = DefaultParams
		}
		p.Ceremony = *ceremony
	}
	return p
}
