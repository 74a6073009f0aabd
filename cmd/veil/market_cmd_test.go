package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
)

// --fund goes through ledger.ParseAllocations (tested there); a bad one is
// a usage error.
func TestParseFunds(t *testing.T) {
	k := hex.EncodeToString(ledgertest.Key("a").Public().(ed25519.PublicKey))
	if a, err := parseFunds([]string{k + "=2.5"}); err != nil || len(a) != 1 || a[0].Amount != 2_500_000 {
		t.Fatalf("parseFunds: %v %v", a, err)
	}
	for _, bad := range []string{k, "abcd=1", k + "=x"} {
		if _, err := parseFunds([]string{bad}); err == nil {
			t.Errorf("--fund %q accepted", bad)
		}
	}
}

// veil providers and veil account against a node with an offer.
func TestProvidersAndAccountCommands(t *testing.T) {
	f := ledgertest.NewFixture("cli", "m")
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: "cli", Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("n"),
		Params: f.FundedParams(10, 5*ledger.Unit)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.SubmitBatch(context.Background(), [][]byte{f.Register("mnist"), f.Offer("mnist", ledger.Unit/10, 2*ledger.Unit, 5)}); err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- query.Serve(ctx, n, lis, nil) }()
	defer func() { cancel(); <-done }()
	out, err := runCLI(t, "providers", "--ledger", lis.Addr().String())
	if err != nil || !strings.Contains(out, "mnist") || !strings.Contains(out, "0.100000") || !strings.Contains(out, "2.000000") {
		t.Fatalf("providers: %v\n%s", err, out)
	}
	pub := hex.EncodeToString(f.Client.Public().(ed25519.PublicKey))
	out, err = runCLI(t, "account", "--ledger", lis.Addr().String(), "--key", pub)
	if err != nil || !strings.Contains(out, "5.000000 VEIL") {
		t.Fatalf("account: %v\n%s", err, out)
	}
	if code := run([]string{"account", "--ledger", lis.Addr().String(), "--key", "zz"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("a bad key: exit %d, want 2", code)
	}
	if code := run([]string{"ledger", "testnet", "--dir", t.TempDir(), "--free", "--fund", pub + "=1"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("--free with --fund: exit %d, want 2", code)
	}
}
