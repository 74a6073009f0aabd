package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// runCLI runs the veil command line in process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestLedgerVerifyInclusionCommand(t *testing.T) {
	dir := t.TempDir()
	key := ledgertest.Key("cli-node")
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "l.db"), ChainID: "cli", Verifier: ledgertest.FakeVerifier{}, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	f := ledgertest.NewFixture("cli", "a")
	r := f.NewRequest("m", "r", 3)
	if _, err := n.SubmitBatch(context.Background(), [][]byte{f.Register("m"), f.Receipt(r), f.Reveal(r), f.Proof([]*ledgertest.Request{r}, false)}); err != nil {
		t.Fatal(err)
	}
	e, err := n.Entry(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	b, _ := protojson.Marshal(e)
	good := filepath.Join(dir, "entry.json")
	os.WriteFile(good, b, 0o644)
	pub := hex.EncodeToString(n.PublicKey())

	out, err := runCLI(t, "ledger", "verify-inclusion", "--entry", good, "--key", pub)
	if err != nil || !strings.Contains(out, "OK: entry 3 (ChallengeProof") {
		t.Fatalf("good entry: %v\n%s", err, out)
	}
	wrongKey := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if _, err := runCLI(t, "ledger", "verify-inclusion", "--entry", good, "--key", wrongKey); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Fatalf("wrong key: %v", err)
	}
	e.Tx[len(e.Tx)-3] ^= 1
	e.LeafHash = nil
	b, _ = protojson.Marshal(e)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, b, 0o644)
	if _, err := runCLI(t, "ledger", "verify-inclusion", "--entry", bad, "--key", pub); err == nil || !strings.Contains(err.Error(), "does NOT verify") {
		t.Fatalf("changed transaction: %v", err)
	}
	if _, err := runCLI(t, "ledger", "verify-inclusion", "--entry", good); err == nil {
		t.Fatal("no --key and no --trust-embedded-key: want a usage error")
	} else if code := run([]string{"ledger", "verify-inclusion", "--entry", good}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("exit status %d for a usage error, want 2", code)
	}
}

// veil ledger testnet --phase1 writes a funded, required contributor key
// per validator and says how phase 1 runs; a bad --phase1 is a usage error.
func TestLedgerTestnetPhase1Command(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(t, "ledger", "testnet", "--nodes", "2", "--dir", dir, "--phase1", "5")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "phase 1 (2^5) is open") || !strings.Contains(out, "cannot close before all 2") {
		t.Fatalf("output: %s", out)
	}
	gen, err := os.ReadFile(filepath.Join(dir, "node0", "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		key := filepath.Join(dir, "node"+string(rune('0'+i)), "contributor.key")
		st, err := os.Stat(key)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("contributor key %d: %v %v", i, st, err)
		}
	}
	if !bytes.Contains(gen, []byte("ceremony_phase1_contributors")) && !bytes.Contains(gen, []byte("ceremonyPhase1Contributors")) {
		t.Fatalf("genesis does not list the required contributors:\n%s", gen)
	}
	if code := run([]string{"ledger", "testnet", "--dir", t.TempDir(), "--phase1", "25"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("--phase1 25: exit %d, want 2", code)
	}
}
