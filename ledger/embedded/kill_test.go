package embedded_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
)

const writerEnv = "VEIL_LEDGER_TEST_WRITER_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(runWriter(path))
	}
	os.Exit(m.Run())
}

// runWriter submits receipts forever, printing each acknowledged log index,
// until it is killed.
func runWriter(path string) int {
	n, err := embedded.Open(embedded.Config{Path: path, ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f := ledgertest.NewFixture(chain, "kill")
	ctx := context.Background()
	if _, err := n.Submit(ctx, f.Register("m")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		var batch [][]byte
		for j := 0; j < 8; j++ {
			batch = append(batch, f.Receipt(f.NewRequest("m", fmt.Sprintf("r%d-%d", i, j), 3)))
		}
		rs, err := n.SubmitBatch(ctx, batch)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for j, r := range rs {
			fmt.Fprintf(out, "%d r%d-%d\n", r.Index, i, j)
		}
		out.Flush()
	}
}

// TestKilledWriterLosesNothingAcknowledged kills (SIGKILL) a process in
// the middle of writing blocks; every transaction it had acknowledged is
// in the reopened ledger, and the log verifies.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(stdout)
	for len(acked) < 400 && sc.Scan() {
		f := strings.Fields(sc.Text())
		i, _ := strconv.ParseUint(f[0], 10, 64)
		acked[f[1]] = i
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // acknowledgements already written before the kill
		f := strings.Fields(sc.Text())
		i, _ := strconv.ParseUint(f[0], 10, 64)
		acked[f[1]] = i
	}
	cmd.Wait()
	if len(acked) < 400 {
		t.Fatalf("writer acknowledged only %d transactions", len(acked))
	}
	n := open(t, path, ledgertest.FakeVerifier{})
	defer n.Close()
	ctx := context.Background()
	fx := ledgertest.NewFixture(chain, "kill")
	for id, idx := range acked {
		rec, err := n.Request(ctx, fx.KeyOf("m", id))
		if err != nil || rec.ReceiptIndex != idx || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_RECEIPTED {
			t.Fatalf("acknowledged %s (index %d) after the kill: %v %v", id, idx, rec, err)
		}
	}
	_, size, _, _ := n.Head()
	e, err := n.Entry(ctx, size-1)
	if err != nil || ledger.VerifyInclusion(e, n.PublicKey()) != nil {
		t.Fatalf("last entry after the kill: %v", err)
	}
	t.Logf("%d acknowledged before SIGKILL; log size after restart %d", len(acked), size)
}
