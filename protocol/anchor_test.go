package protocol

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// LedgerTrust.Check catches every bad setting before anything is dialled.
func TestLedgerTrustCheck(t *testing.T) {
	key := strings.Repeat("ab", 32)
	for _, c := range []struct {
		l    LedgerTrust
		want string
	}{
		{LedgerTrust{}, "--ledger: name the verifier ledger node"},
		{LedgerTrust{Addr: "a"}, "--ledger-key"},
		{LedgerTrust{Addr: "a", NodeKey: key, Genesis: "g.json"}, "--ledger-key"},
		{LedgerTrust{Addr: "a", NodeKey: "abc"}, "64 hex digits"},
		{LedgerTrust{Addr: "a", NodeKey: key, PinServer: "zz"}, "--pin-server-key"},
		{LedgerTrust{Addr: "a", NodeKey: key, PinCommitment: "zz"}, "--pin-commitment"},
		{LedgerTrust{Addr: "a", NodeKey: key, Contributors: []string{"xyz"}}, "--trust-contributor"},
	} {
		if err := c.l.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error mentioning %q", c.l, err, c.want)
		}
	}
	l := LedgerTrust{Addr: "a", Genesis: "g.json", PinServer: key, Contributors: []string{"self", key}, RequireCeremony: true}
	if err := l.Check(); err != nil {
		t.Fatal(err)
	}
	self := ed25519.PublicKey(make([]byte, 32))
	p, err := l.Pin(func() (ed25519.PublicKey, error) { return self, nil })
	if err != nil || len(p.Contributors) != 2 || !p.Contributors[0].Equal(self) || len(p.ServerKey) != 32 || !p.RequireCeremony {
		t.Fatalf("Pin: %+v, %v", p, err)
	}
}
