package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/protocol"
)

// veil setup audit re-verifies a sealed phase 1 (2^4 here) from the
// node's verified log entries and prints each contribution; an unknown
// ceremony is an error.
func TestSetupAuditCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := embedded.Open(embedded.Config{
		Path: filepath.Join(t.TempDir(), "l.db"), ChainID: ledger.DefaultChainID, Verifier: ledgertest.FakeVerifier{}, Ceremony: zkverify.NewCeremony(),
		SigningKey: ledgertest.Key("cli-node"), BlockInterval: 20 * time.Millisecond,
		Params: ledger.Params{ProofDeadlineBlocks: 60, Ceremony: ledger.CeremonyParams{Phase1Domain: 16, MinContributions: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, name := range []string{"alice", "bob"} {
		if _, err := protocol.ContributePhase1(ctx, n, ledger.Signer{ChainID: ledger.DefaultChainID, Key: ledgertest.Key(name)}, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := protocol.CloseAndSeal(ctx, n, ledger.Signer{ChainID: ledger.DefaultChainID, Key: ledgertest.Key("alice")}, ledger.Phase1ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = query.Serve(ctx, n, lis, nil) }()
	key := hex.EncodeToString(n.PublicKey())

	addr := lis.Addr().String()
	out, err := runCLI(t, "setup", "audit", "--ledger", addr, "--ledger-key", key, "-q")
	if err != nil || !strings.Contains(out, "phase 1 (domain 2^4): 2 contributions re-verified from the log") || !strings.Contains(out, "these are all the contributions logged before it") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	out, err = runCLI(t, "setup", "audit", "--ledger", addr, "--ledger-key", key, "-q", "--json")
	var a struct {
		Phase1 []struct {
			Contributor string `json:"contributor"`
		} `json:"phase1"`
		Sealed bool `json:"phase1_sealed"`
	}
	if err != nil || json.Unmarshal([]byte(out), &a) != nil || len(a.Phase1) != 2 || !a.Sealed ||
		a.Phase1[1].Contributor != hex.EncodeToString(ledgertest.Key("bob").Public().(ed25519.PublicKey)) {
		t.Fatalf("audit --json: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "setup", "audit", "--ledger", addr, "--ledger-key", key, "--ceremony", "nosuch", "-q"); err == nil || !strings.Contains(err.Error(), `ceremony "nosuch"`) {
		t.Fatalf("unknown ceremony: %v", err)
	}
	if _, err := runCLI(t, "setup", "audit", "--ledger", addr, "--ledger-key", key, "--model", "nosuch", "-q"); err == nil || !strings.Contains(err.Error(), `model "nosuch" on the ledger`) {
		t.Fatalf("unknown model: %v", err)
	}
}
