package zkverify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// ceremonyNode is an embedded node of a chain whose phase 1 has domain n,
// with a real ceremony verifier, cutting a block every 20 ms (heights must
// advance for the beacon).
func ceremonyNode(t *testing.T, n uint64, min uint32, insecure bool) *embedded.Node {
	t.Helper()
	node, err := embedded.Open(embedded.Config{
		Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: zkverify.New(), Ceremony: zkverify.NewCeremony(),
		SigningKey: ledgertest.Key("node"), BlockInterval: 20 * time.Millisecond,
		Params: ledger.Params{ProofDeadlineBlocks: 60, Ceremony: ledger.CeremonyParams{Phase1Domain: n, MinContributions: min, InsecureOwnerKeys: insecure}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	return node
}

func wantCode(t *testing.T, what string, err error, code ledgerv1.Code) {
	t.Helper()
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
	t.Logf("%s: refused, %s: %s", what, rj.Code, rj.Reason)
}

// contribute uploads blob as chunks and submits it as a contribution on
// prev, returning the submission's error.
func contribute(ctx context.Context, t *testing.T, n ledger.API, s ledger.Signer, id string, prev, blob []byte) error {
	t.Helper()
	chunks, err := protocol.UploadBlob(ctx, n, s, blob)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: id, PreviousHash: prev, Chunks: chunks})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Submit(ctx, tx)
	return err
}

// TestPhase1OnLedgerRefusesBadContributions: on a chain with a phase 1 of
// domain 2^4, an honest contribution is verified and recorded; a
// contribution that does not extend the last one (made on the initial
// accumulator while naming the right previous hash, or naming a stale
// previous hash), one whose points were changed, a truncated one, a
// replayed one, one whose chunks were never uploaded, a close before the
// minimum, a seal before the close, and any contribution after the close
// are each refused with their own code, and leave the ceremony as it was.
func TestPhase1OnLedgerRefusesBadContributions(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 2, false)
	alice := ledger.Signer{ChainID: chain, Key: ledgertest.Key("alice")}
	bob := ledger.Signer{ChainID: chain, Key: ledgertest.Key("bob")}

	rec, err := n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	init0, _ := mpcsetup.NewPhase1(16)
	if h := init0.Hash(); !bytes.Equal(rec.LastHash, h[:]) || rec.Domain != 16 || len(rec.Contributions) != 0 {
		t.Fatalf("phase 1 before any contribution: %v", rec)
	}
	wantCode(t, "close with no contribution", submitTx(ctx, n, must(alice.CeremonyClose(ledger.Phase1ID))), ledgerv1.Code_CODE_CEREMONY_TOO_FEW)
	wantCode(t, "seal before the close", submitTx(ctx, n, must(alice.CeremonySeal(ledger.Phase1ID))), ledgerv1.Code_CODE_CEREMONY_BEACON_PENDING)

	c1, err := protocol.ContributePhase1(ctx, n, alice, "alice")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ = n.Ceremony(ctx, ledger.Phase1ID)
	if len(rec.Contributions) != 1 || !bytes.Equal(rec.LastHash, c1.Hash[:]) || !bytes.Equal(rec.Contributions[0].Contributor, alice.Public()) {
		t.Fatalf("after one contribution: %v", rec)
	}
	acc1, err := mpcsetup.DecodePhase1(mustBlob(ctx, t, n, rec.Contributions[0].Chunks), 16)
	if err != nil {
		t.Fatal(err)
	}

	// On the initial accumulator, naming the right previous hash: the
	// accumulator's own challenge gives it away.
	stale, _ := init0.Contribute(ctx)
	wantCode(t, "contribution on a stale accumulator", contribute(ctx, t, n, bob, ledger.Phase1ID, c1.Hash[:], stale.Bytes()), ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING)
	// Naming a previous hash that is not the last one.
	next, _ := acc1.Contribute(ctx)
	h0 := init0.Hash()
	wantCode(t, "contribution naming a stale previous hash", contribute(ctx, t, n, bob, ledger.Phase1ID, h0[:], next.Bytes()), ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING)
	// Points changed: [τ^2]₁ replaced, so the powers are not a geometric
	// sequence any more.
	forged, _ := acc1.Contribute(ctx)
	forged.SRS.G1.Tau[2] = forged.SRS.G1.Tau[3]
	wantCode(t, "contribution with a changed power of τ", contribute(ctx, t, n, bob, ledger.Phase1ID, c1.Hash[:], forged.Bytes()), ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION)
	// Truncated by one byte.
	nb := next.Bytes()
	wantCode(t, "truncated contribution", contribute(ctx, t, n, bob, ledger.Phase1ID, c1.Hash[:], nb[:len(nb)-1]), ledgerv1.Code_CODE_CEREMONY_BAD_ENCODING)
	// Replayed: alice's accumulator again (by bob, so it is a new
	// transaction).
	wantCode(t, "replayed contribution", submitTx(ctx, n, must(bob.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: init0Hash(init0), Chunks: rec.Contributions[0].Chunks}))), ledgerv1.Code_CODE_CEREMONY_REPLAYED)
	// Chunks never uploaded.
	missing := sha256.Sum256([]byte("never uploaded"))
	wantCode(t, "contribution with a missing chunk", submitTx(ctx, n, must(bob.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: c1.Hash[:], Chunks: [][]byte{missing[:]}}))), ledgerv1.Code_CODE_MISSING_CHUNK)
	// A phase 2 before phase 1 is sealed.
	wantCode(t, "phase 2 before the seal", submitTx(ctx, n, must(bob.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: "m", Spec: []byte("x"), Batch: 1, Chunks: rec.Contributions[0].Chunks}))), ledgerv1.Code_CODE_CEREMONY_NOT_SEALED)
	// Only chunk uploads changed the state; the ceremony did not move.
	rec2, _ := n.Ceremony(ctx, ledger.Phase1ID)
	if len(rec2.Contributions) != 1 || !bytes.Equal(rec2.LastHash, c1.Hash[:]) {
		t.Fatalf("refused contributions changed the ceremony: %v", rec2)
	}

	// The honest next contribution is accepted; the ceremony closes and
	// seals with the beacon of a later block.
	if err := contribute(ctx, t, n, bob, ledger.Phase1ID, c1.Hash[:], next.Bytes()); err != nil {
		t.Fatalf("honest second contribution: %v", err)
	}
	sealed, err := protocol.CloseAndSeal(ctx, n, alice, ledger.Phase1ID, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !sealed.Sealed || len(sealed.Beacon) != 32 || sealed.BeaconHeight != sealed.CloseHeight+1 || len(sealed.Contributions) != 2 {
		t.Fatalf("sealed phase 1: %v", sealed)
	}
	after, _ := next.Contribute(ctx)
	wantCode(t, "contribution after the seal", contribute(ctx, t, n, bob, ledger.Phase1ID, sealed.LastHash, after.Bytes()), ledgerv1.Code_CODE_CEREMONY_CLOSED)
	// A seal or close body names only the ceremony, so anybody's second
	// one is the same signed body: refused as a replay before its rules run.
	wantCode(t, "second seal", submitTx(ctx, n, must(bob.CeremonySeal(ledger.Phase1ID))), ledgerv1.Code_CODE_REPLAYED_SIGNATURE)
	pos, _, err := protocol.InTranscript(ctx, n, ledger.Phase1ID, c1.Hash[:])
	if err != nil || pos != 1 {
		t.Fatalf("alice's contribution in the transcript: %d %v", pos, err)
	}
}

func init0Hash(p *mpcsetup.Phase1) []byte { h := p.Hash(); return h[:] }

func submitTx(ctx context.Context, n ledger.API, tx []byte) error {
	_, err := n.Submit(ctx, tx)
	return err
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func mustBlob(ctx context.Context, t *testing.T, n ledger.CeremonyAPI, chunks [][]byte) []byte {
	t.Helper()
	b, err := protocol.FetchBlob(ctx, n, chunks)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
