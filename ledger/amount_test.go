package ledger_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

func TestParseAmount(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1": ledger.Unit, "0.5": ledger.Unit / 2, "12.000001": 12*ledger.Unit + 1, " 3 ": 3 * ledger.Unit} {
		if got, err := ledger.ParseAmount(in); err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.0000001", "abc", "1e3", "9999999999999", ".5", "1.-5"} {
		if _, err := ledger.ParseAmount(bad); err == nil {
			t.Errorf("ParseAmount(%q) accepted", bad)
		}
	}
	k := hex.EncodeToString(ledgertest.Key("a").Public().(ed25519.PublicKey))
	if a, err := ledger.ParseAllocations([]string{k + "=2.5"}); err != nil || len(a) != 1 || a[0].Amount != 2_500_000 {
		t.Fatalf("ParseAllocations: %v %v", a, err)
	}
	for _, bad := range []string{k, "abcd=1", k + "=x"} {
		if _, err := ledger.ParseAllocations([]string{bad}); err == nil {
			t.Errorf("allocation %q accepted", bad)
		}
	}
	if got := ledger.FormatAmount(12*ledger.Unit + 1); got != "12.000001" {
		t.Errorf("FormatAmount = %q", got)
	}
}
