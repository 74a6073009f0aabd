package zkverify_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// allocatedBy is the number of heap bytes f allocates (the node runs in
// this process).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The ledger's copy of the phase-1 contribution size is mpcsetup's, at
// every domain the chain accepts.
func TestPhase1ContributionSizeMatchesMpcsetup(t *testing.T) {
	for n := uint64(2); n <= ledger.MaxPhase1Domain; n *= 2 {
		if got, want := ledger.Phase1ContributionSize(n), mpcsetup.Phase1Size(n, false); got != want {
			t.Fatalf("domain %d: ledger says %d bytes, mpcsetup %d", n, got, want)
		}
	}
}

// A phase-1 contribution whose SRS size field says 2^36 (the right total
// length: gnark's decoder allocated 5·2^36 points from it, a fatal OOM in
// CheckTx) is refused as BAD_ENCODING without allocating from it.
func TestPhase1ContributionWithForgedDomainRefused(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 1, false)
	mallory := ledger.Signer{ChainID: chain, Key: ledgertest.Key("mallory")}
	rec, err := n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mpcsetup.NewPhase1(16)
	if err != nil {
		t.Fatal(err)
	}
	next, err := p.Contribute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := next.Bytes()
	const off = 3 * (32 + 64) // after the three update proofs
	if binary.BigEndian.Uint64(b[off:]) != 16 {
		t.Fatalf("N not at offset %d", off)
	}
	binary.BigEndian.PutUint64(b[off:], 1<<36)
	var serr error
	a := allocatedBy(func() { serr = contribute(ctx, t, n, mallory, ledger.Phase1ID, rec.LastHash, b) })
	wantCode(t, "phase-1 contribution whose N is 2^36", serr, ledgerv1.Code_CODE_CEREMONY_BAD_ENCODING)
	t.Logf("%d KiB allocated (upload included)", a>>10)
	if a > 64<<20 {
		t.Errorf("refusing it allocated %d MiB", a>>20)
	}
}

// The reviewer's amplification: one uploaded 240 KiB chunk named
// thousands of times in one (refused, so free) contribution made every
// node copy and hash gigabytes. Now the previous hash is checked first
// (NOT_EXTENDING), and with the right previous hash the chunk list is
// refused (BAD_CHUNK_LIST: more chunks than the contribution's size
// needs) before anything is copied; a list of the right count whose chunks
// do not add up to the contribution's size is BAD_ENCODING.
func TestContributionChunkListRefusedBeforeCopying(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 1, false)
	mallory := ledger.Signer{ChainID: chain, Key: ledgertest.Key("mallory")}
	data := make([]byte, ledger.MaxChunkBytes)
	rand.Read(data)
	if err := submitTx(ctx, n, must(mallory.CeremonyChunk(data))); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	refs := make([][]byte, 4000)
	for i := range refs {
		refs[i] = h[:]
	}
	rec, err := n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		prev []byte
		code ledgerv1.Code
	}{
		{"one chunk named 4000 times, wrong previous hash", make([]byte, 32), ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING},
		{"one chunk named 4000 times, right previous hash", rec.LastHash, ledgerv1.Code_CODE_CEREMONY_BAD_CHUNK_LIST},
	} {
		tx := must(mallory.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: ledger.Phase1ID, PreviousHash: c.prev, Chunks: refs}))
		var err error
		a := allocatedBy(func() { err = submitTx(ctx, n, tx) })
		wantCode(t, c.what, err, c.code)
		// The blob would be 4000 × 240 KiB = 937 MiB.
		t.Logf("%s: %d KiB allocated", c.what, a>>10)
		if a > 64<<20 {
			t.Errorf("%s: refusing it allocated %d MiB", c.what, a>>20)
		}
	}
	wantCode(t, "one chunk of the wrong length", submitTx(ctx, n, must(mallory.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: rec.LastHash, Chunks: refs[:1]}))), ledgerv1.Code_CODE_CEREMONY_BAD_ENCODING)
}

// A phase-2 start (whose size the ledger does not know before compiling
// the spec) naming a chunk twice is refused as BAD_CHUNK_LIST before the
// phase-1 transcript or the start is reassembled; a Phase2Open before
// phase 1 is sealed is NOT_SEALED.
func TestPhase2OpenChunkListRefused(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 1, false)
	mallory := ledger.Signer{ChainID: chain, Key: ledgertest.Key("mallory")}
	chunks, err := protocol.UploadBlob(ctx, n, mallory, []byte("not a start"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(chunks [][]byte) error {
		return submitTx(ctx, n, must(mallory.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: "x", Spec: []byte("spec"), Batch: 1, Chunks: chunks})))
	}
	wantCode(t, "Phase2Open before phase 1 is sealed", open(chunks), ledgerv1.Code_CODE_CEREMONY_NOT_SEALED)
	if _, err := protocol.ContributePhase1(ctx, n, mallory, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CloseAndSeal(ctx, n, mallory, ledger.Phase1ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Phase2Open naming its chunk twice", open([][]byte{chunks[0], chunks[0]}), ledgerv1.Code_CODE_CEREMONY_BAD_CHUNK_LIST)
	wantCode(t, "Phase2Open of a spec that does not parse", open(chunks), ledgerv1.Code_CODE_SPEC_MISMATCH)
}

// The reviewer's spec (784 → 64 → 10, batch 2: tens of thousands of
// constraints) on a phase 1 of domain 2^4 is refused as WRONG_CIRCUIT from
// its bound on constraints (ledger.SpecBounder, before the phase-1
// transcript is reassembled), without compiling it (compiling it
// allocated 1.7 GiB).
func TestPhase2OpenRefusesOversizedSpecBeforeCompiling(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 1, false)
	mallory := ledger.Signer{ChainID: chain, Key: ledgertest.Key("mallory")}
	if _, err := protocol.ContributePhase1(ctx, n, mallory, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.CloseAndSeal(ctx, n, mallory, ledger.Phase1ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	chunks, err := protocol.UploadBlob(ctx, n, mallory, []byte("not a start"))
	if err != nil {
		t.Fatal(err)
	}
	spec := "veil-spec/v2 classes=10 input_frac=8 tolerance=64 layers=3\n" +
		"dense in=784 out=64 wbits=8 wfrac=7 bbits=17 shift=7 acc=[-6815744,6815744]\n" +
		"square in=64 out=64 wbits=0 wfrac=0 bbits=0 shift=16 acc=[0,2952790016]\n" +
		"dense in=64 out=10 wbits=8 wfrac=7 bbits=13 shift=0 acc=[-14680064,18874368]\n"
	var serr error
	a := allocatedBy(func() {
		serr = submitTx(ctx, n, must(mallory.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: "x", Spec: []byte(spec), Batch: 2, Chunks: chunks})))
	})
	wantCode(t, "Phase2Open of a big circuit on a 2^4 phase 1", serr, ledgerv1.Code_CODE_CEREMONY_WRONG_CIRCUIT)
	t.Logf("%d KiB allocated", a>>10)
	if a > 32<<20 {
		t.Errorf("refusing it allocated %d MiB: the spec was compiled", a>>20)
	}
}

// A ceremony takes at most MaxCeremonyContributions contributions (the
// next is FULL), and its record then still fits one gRPC message: the
// reviewer's unbounded record stopped being served after ~135 cheap
// contributions. An attestation over MaxAttestationBytes is INVALID_FIELD.
func TestCeremonyContributionsCapped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := ceremonyNode(t, 16, 1, false)
	mallory := ledger.Signer{ChainID: chain, Key: ledgertest.Key("mallory")}
	rec, err := n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mpcsetup.NewPhase1(16)
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.Contribute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := protocol.UploadBlob(ctx, n, mallory, first.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "attestation of 257 bytes", submitTx(ctx, n, must(mallory.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: rec.LastHash, Chunks: chunks, Attestation: strings.Repeat("x", ledger.MaxAttestationBytes+1)}))),
		ledgerv1.Code_CODE_INVALID_FIELD)
	att := strings.Repeat("x", ledger.MaxAttestationBytes)
	for i := 0; i < ledger.MaxCeremonyContributions; i++ {
		if _, err := protocol.ContributePhase1(ctx, n, mallory, att); err != nil {
			t.Fatalf("contribution %d: %v", i+1, err)
		}
	}
	_, err = protocol.ContributePhase1(ctx, n, mallory, att)
	wantCode(t, "contribution after the cap", err, ledgerv1.Code_CODE_CEREMONY_FULL)
	rec, err = n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Contributions) != ledger.MaxCeremonyContributions {
		t.Fatalf("%d contributions recorded, want %d", len(rec.Contributions), ledger.MaxCeremonyContributions)
	}
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go query.Serve(ctx, n, gl, hl)
	c, err := query.Dial(gl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatalf("GetCeremony of a full ceremony: %v", err)
	}
	if len(got.Contributions) != ledger.MaxCeremonyContributions {
		t.Fatalf("served %d contributions", len(got.Contributions))
	}
	t.Logf("full record: %d bytes (limit %d)", proto.Size(got), query.MaxMessageBytes)
}
