package ledger_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// fillStore commits three blocks: registration, receipts, reveals.
func fillStore(t *testing.T, s *ledger.Store, f *ledgertest.Fixture) []*ledgertest.Request {
	r1, r2 := f.NewRequest("m", "r1", 3), f.NewRequest("m", "r2", 3)
	mustOK(t, applyBlock(t, s, f.Register("m")))
	mustOK(t, applyBlock(t, s, f.Receipt(r1), f.Receipt(r2)))
	mustOK(t, applyBlock(t, s, f.Reveal(r1), f.Reveal(r2)))
	return []*ledgertest.Request{r1, r2}
}

func TestRestartRecoversEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	f := ledgertest.NewFixture(chain, "a")
	s := openStore(t, path)
	rs := fillStore(t, s, f)
	h0, size0, app0, _ := s.Head()
	s.Close()

	s = openStore(t, path)
	defer s.Close()
	h1, size1, app1, _ := s.Head()
	if h1 != h0 || size1 != size0 || !bytes.Equal(app0, app1) || size1 != 5 {
		t.Fatalf("after restart: height %d size %d, want %d %d and the same app hash", h1, size1, h0, size0)
	}
	// The state is live: the proof is accepted after the restart.
	mustOK(t, applyBlock(t, s, f.Proof(rs, false)))
	if rec, _ := s.Request(ctx, f.Key("r2")); rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN {
		t.Fatalf("r2 after proof: %v", rec.Status)
	}
}

// A crash after the block's pages are written but before bbolt's commit
// (the fsync and meta-page write) loses exactly the uncommitted block: the
// store reopens at the previous block, consistent, and the block's
// transactions can be submitted again.
func TestCrashBeforeFsyncLosesOnlyTheUnacknowledgedBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	f := ledgertest.NewFixture(chain, "a")
	crash := false
	s := openStore(t, path, func(o *ledger.Options) {
		ledger.SetBeforeCommit(o, func() error {
			if crash {
				return errors.New("simulated crash before fsync")
			}
			return nil
		})
	})
	rs := fillStore(t, s, f)
	h0, size0, app0, _ := s.Head()
	crash = true
	b, err := s.Begin(h0 + 1)
	if err != nil {
		t.Fatal(err)
	}
	proofTx := f.Proof(rs, false)
	if r, err := b.Apply(proofTx); err != nil || !r.OK() {
		t.Fatalf("apply proof: %v %v", r, err)
	}
	if err := b.Commit(); err == nil {
		t.Fatal("commit with a crash hook succeeded")
	}
	s.Close()

	s = openStore(t, path)
	defer s.Close()
	h1, size1, app1, _ := s.Head()
	if h1 != h0 || size1 != size0 || !bytes.Equal(app0, app1) {
		t.Fatalf("after crash: height %d size %d, want %d %d", h1, size1, h0, size0)
	}
	if rec, _ := s.Request(context.Background(), f.Key("r1")); rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
		t.Fatalf("r1 status after crash %v, want REVEALED", rec.Status)
	}
	res := applyBlock(t, s, proofTx)
	mustOK(t, res)
	if res[0].Index != size0 {
		t.Fatalf("resubmitted proof at %d, want %d", res[0].Index, size0)
	}
}

// A crash in the middle of writing the meta page (a torn write) leaves a
// meta page whose checksum fails; bbolt then uses the other meta page,
// which describes the previous block, and the ledger opens there.
func TestTornMetaPageFallsBackToPreviousBlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	f := ledgertest.NewFixture(chain, "a")
	s := openStore(t, path)
	rs := fillStore(t, s, f)
	h0, size0, app0, _ := s.Head()
	mustOK(t, applyBlock(t, s, f.Proof(rs, false)))
	s.Close()

	// Find the meta page with the higher transaction id and damage it.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	txid := func(p int) uint64 { // bbolt meta: page header 16 bytes, txid at offset 16+48
		o := p*pageSize + 16 + 48
		return leU64(data[o : o+8])
	}
	newest := 0
	if txid(1) > txid(0) {
		newest = 1
	}
	data[newest*pageSize+16+50] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path)
	defer s.Close()
	h1, size1, app1, _ := s.Head()
	if h1 != h0 || size1 != size0 || !bytes.Equal(app0, app1) {
		t.Fatalf("after torn meta write: height %d size %d, want the previous block (%d, %d)", h1, size1, h0, size0)
	}
}

func leU64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func TestCorruptDatabaseIsAnError(t *testing.T) {
	f := ledgertest.NewFixture(chain, "a")
	build := func(t *testing.T) (string, []byte) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		s := openStore(t, path)
		fillStore(t, s, f)
		raw, err := s.Tx(1)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		return path, raw
	}
	open := func(path string) error {
		s, err := ledger.Open(path, ledger.Options{ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
		if err == nil {
			s.Close()
		}
		return err
	}
	flipAll := func(t *testing.T, path string, needle []byte) {
		data, _ := os.ReadFile(path)
		n := 0
		for i := bytes.Index(data, needle); i >= 0; {
			data[i+len(needle)/2] ^= 0x55
			n++
			j := bytes.Index(data[i+1:], needle)
			if j < 0 {
				break
			}
			i += 1 + j
		}
		if n == 0 {
			t.Fatal("needle not found in the database file")
		}
		os.WriteFile(path, data, 0o600)
	}
	t.Run("garbage file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.db")
		os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 4096), 0o600)
		if err := open(path); !errors.Is(err, ledger.ErrCorrupt) {
			t.Fatalf("open garbage: %v, want ErrCorrupt", err)
		}
	})
	t.Run("truncated file", func(t *testing.T) {
		// At several points: bbolt faults (an unrecoverable SIGSEGV) reading
		// a page past the end, so Open must refuse before bbolt maps it.
		path, _ := build(t)
		data, _ := os.ReadFile(path)
		for _, n := range []int{len(data) / 3, len(data) / 2, 2 * len(data) / 3} {
			os.WriteFile(path, data[:n], 0o600)
			if err := open(path); !errors.Is(err, ledger.ErrCorrupt) {
				t.Fatalf("database truncated to %d of %d bytes: %v, want ErrCorrupt", n, len(data), err)
			}
		}
	})
	t.Run("flipped byte in a logged transaction", func(t *testing.T) {
		path, raw := build(t)
		var stx ledgerv1.SignedTx
		proto.Unmarshal(raw, &stx)
		flipAll(t, path, stx.Signature) // the signature is stored only in the log
		err := open(path)
		if !errors.Is(err, ledger.ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
		t.Logf("error shown: %v", err)
	})
	t.Run("flipped byte in a state record", func(t *testing.T) {
		path, _ := build(t)
		keys := sha256.Sum256([]byte("evaluation keys"))
		flipAll(t, path, keys[:]) // in request records (and in the logged receipts)
		if err := open(path); !errors.Is(err, ledger.ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("both meta pages damaged", func(t *testing.T) {
		path, _ := build(t)
		data, _ := os.ReadFile(path)
		ps := os.Getpagesize()
		data[16+40] ^= 1
		data[ps+16+40] ^= 1
		os.WriteFile(path, data, 0o600)
		if err := open(path); !errors.Is(err, ledger.ErrCorrupt) {
			t.Fatalf("open: %v, want ErrCorrupt", err)
		}
	})
}
