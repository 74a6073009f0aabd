package zkverify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// lyingCeremonyNode serves the real log but its own ceremony record: what
// a node that wants a contributor (or a client) to believe a transcript
// that was never logged would do.
type lyingCeremonyNode struct {
	*embedded.Node
	edit func(*ledgerv1.CeremonyRecord)
}

func (l lyingCeremonyNode) Ceremony(ctx context.Context, id string) (*ledgerv1.CeremonyRecord, error) {
	rec, err := l.Node.Ceremony(ctx, id)
	if err != nil {
		return nil, err
	}
	rec = proto.Clone(rec).(*ledgerv1.CeremonyRecord)
	l.edit(rec)
	return rec, nil
}

// TestTranscriptChecksUseTheLogNotTheRecord: `veil setup check` and the
// client's --trust-contributor pin accept what verified log entries show,
// and refuse a node's record that claims a contribution, a contributor or
// a seal the log does not have.
func TestTranscriptChecksUseTheLogNotTheRecord(t *testing.T) {
	ctx := context.Background()
	n := ceremonyNode(t, 16, 2, false)
	alice := ledger.Signer{ChainID: chain, Key: ledgertest.Key("alice")}
	bob := ledger.Signer{ChainID: chain, Key: ledgertest.Key("bob")}
	stranger := ledgertest.Key("stranger").Public().(ed25519.PublicKey)
	ca, err := protocol.ContributePhase1(ctx, n, alice, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ContributePhase1(ctx, n, bob, "bob"); err != nil {
		t.Fatal(err)
	}
	reader := func(api ledger.API) (*trust.Reader, *ledgerv1.Checkpoint) { return nodeReader(ctx, t, api) }

	// Before the seal: found, not sealed; a trusted-contributor check
	// refuses an unsealed ceremony.
	r, head := reader(n)
	p, err := protocol.VerifyInTranscript(ctx, r, head, ledger.Phase1ID, ca.Hash[:])
	if err != nil || p.Position != 1 || p.Sealed || !bytes.Equal(p.Contributor, alice.Key.Public().(ed25519.PublicKey)) {
		t.Fatalf("alice's contribution before the seal: %+v %v", p, err)
	}
	if err := protocol.CheckContributedBy(ctx, r, head, ledger.Phase1ID, []ed25519.PublicKey{alice.Key.Public().(ed25519.PublicKey)}); err == nil {
		t.Fatal("an unsealed ceremony was trusted")
	}

	if _, err := protocol.CloseAndSeal(ctx, n, alice, ledger.Phase1ID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r, head = reader(n)
	p, err = protocol.VerifyInTranscript(ctx, r, head, ledger.Phase1ID, ca.Hash[:])
	if err != nil || p.Position != 1 || !p.Sealed || p.SealIndex <= p.Index {
		t.Fatalf("alice's contribution after the seal: %+v %v", p, err)
	}
	if err := protocol.CheckContributedBy(ctx, r, head, ledger.Phase1ID, []ed25519.PublicKey{stranger, alice.Key.Public().(ed25519.PublicKey)}); err != nil {
		t.Fatalf("alice is a contributor: %v", err)
	}
	if err := protocol.CheckContributedBy(ctx, r, head, ledger.Phase1ID, []ed25519.PublicKey{stranger}); !errors.Is(err, protocol.ErrNoTrustedContributor) {
		t.Fatalf("a key that never contributed: %v", err)
	}

	// The lies, each refused from the log.
	never := sha256.Sum256([]byte("an accumulator the ledger never saw"))
	lies := []struct {
		name, want string
		edit       func(*ledgerv1.CeremonyRecord)
		check      func(*trust.Reader, *ledgerv1.Checkpoint) error
	}{
		{"a contribution never logged (pointing at alice's entry)", "chunks make accumulator",
			func(rec *ledgerv1.CeremonyRecord) {
				rec.Contributions = append(rec.Contributions, &ledgerv1.CeremonyStep{Hash: never[:], Index: rec.Contributions[0].Index})
			},
			func(r *trust.Reader, h *ledgerv1.Checkpoint) error {
				_, err := protocol.VerifyInTranscript(ctx, r, h, ledger.Phase1ID, never[:])
				return err
			}},
		{"a contribution pointing at an entry that is not one", "not a contribution",
			func(rec *ledgerv1.CeremonyRecord) {
				rec.Contributions = append(rec.Contributions, &ledgerv1.CeremonyStep{Hash: never[:], Index: rec.SealIndex})
			},
			func(r *trust.Reader, h *ledgerv1.Checkpoint) error {
				_, err := protocol.VerifyInTranscript(ctx, r, h, ledger.Phase1ID, never[:])
				return err
			}},
		{"a seal that is not the logged seal", "is not its seal",
			func(rec *ledgerv1.CeremonyRecord) { rec.SealIndex = rec.Contributions[1].Index },
			func(r *trust.Reader, h *ledgerv1.Checkpoint) error {
				_, err := protocol.VerifyInTranscript(ctx, r, h, ledger.Phase1ID, ca.Hash[:])
				return err
			}},
		{"the stranger credited with alice's contribution", "not a contribution by a trusted key",
			func(rec *ledgerv1.CeremonyRecord) { rec.Contributions[0].Contributor = stranger },
			func(r *trust.Reader, h *ledgerv1.Checkpoint) error {
				return protocol.CheckContributedBy(ctx, r, h, ledger.Phase1ID, []ed25519.PublicKey{stranger})
			}},
	}
	for _, l := range lies {
		r, head := reader(lyingCeremonyNode{n, l.edit})
		err := l.check(r, head)
		if err == nil || !strings.Contains(err.Error(), l.want) {
			t.Fatalf("%s: %v, want an error containing %q", l.name, err, l.want)
		}
		t.Logf("%s: refused: %v", l.name, err)
	}
}

// nodeReader reads api's log under its current head, anchored on the test
// node's key (ceremonyNode's), and returns both.
func nodeReader(ctx context.Context, t testing.TB, api ledger.API) (*trust.Reader, *ledgerv1.Checkpoint) {
	t.Helper()
	r := &trust.Reader{API: api, Anchor: trust.Anchor{ChainID: chain, NodeKey: ledgertest.Key("node").Public().(ed25519.PublicKey)}}
	head, err := r.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r, head
}

// acceptingCeremony is the ceremony cryptography of a validator set that
// logs every phase-1 contribution without verifying it.
type acceptingCeremony struct{ ledger.CeremonyVerifier }

func (acceptingCeremony) VerifyPhase1(uint64, []byte, []byte, []byte) error { return nil }

// TestAuditRecomputesWhatTheNodesAccepted: `veil setup audit` re-verifies
// a transcript itself. On an honest chain it passes; on a chain whose
// nodes accepted a contribution whose proofs are bound to another key (a
// real node refuses it: TestPhase1OnLedgerRefusesBadContributions), it
// names that contribution, even though everything after it was accepted;
// and a record that leaves out the last contribution is refused.
func TestAuditRecomputesWhatTheNodesAccepted(t *testing.T) {
	ctx := context.Background()
	alice := ledger.Signer{ChainID: chain, Key: ledgertest.Key("alice")}
	bob := ledger.Signer{ChainID: chain, Key: ledgertest.Key("bob")}
	carol := ledger.Signer{ChainID: chain, Key: ledgertest.Key("carol")}
	reader := func(api ledger.API) (*trust.Reader, *ledgerv1.Checkpoint) { return nodeReader(ctx, t, api) }
	seal := func(n *embedded.Node) {
		if _, err := protocol.CloseAndSeal(ctx, n, alice, ledger.Phase1ID, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}

	honest := ceremonyNode(t, 16, 2, false)
	for _, s := range []ledger.Signer{alice, bob} {
		if _, err := protocol.ContributePhase1(ctx, honest, s, "honest"); err != nil {
			t.Fatal(err)
		}
	}
	seal(honest)
	r, head := reader(honest)
	a, err := protocol.AuditCeremony(ctx, r, head, ledger.Phase1ID, zkverify.NewCeremony(), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := honest.Ceremony(ctx, ledger.Phase1ID)
	if len(a.Phase1) != 2 || !a.Phase1Sealed || a.Phase1SealIndex != sealed.SealIndex {
		t.Fatalf("honest audit: %+v", a)
	}
	for i, s := range []ledger.Signer{alice, bob} {
		got, want := a.Phase1[i], sealed.Contributions[i]
		if !bytes.Equal(got.Contributor, s.Public()) || !bytes.Equal(got.Hash[:], want.Hash) || got.Index != want.Index {
			t.Fatalf("audited contribution %d: %+v, the log's %v", i+1, got, want)
		}
	}
	// Records that do not match the log: each refused.
	for _, l := range []struct {
		name string
		edit func(*ledgerv1.CeremonyRecord)
		want string
	}{
		{"without its last contribution", func(rec *ledgerv1.CeremonyRecord) { rec.Contributions = rec.Contributions[:1] }, "leaves out or misplaces"},
		{"with its contributions swapped", func(rec *ledgerv1.CeremonyRecord) {
			rec.Contributions[0], rec.Contributions[1] = rec.Contributions[1], rec.Contributions[0]
		}, "leaves out or misplaces"},
		{"with a step at the close's entry", func(rec *ledgerv1.CeremonyRecord) { rec.Contributions[1].Index = rec.SealIndex - 1 }, "leaves out or misplaces"},
		{"saying it is not sealed", func(rec *ledgerv1.CeremonyRecord) { rec.Sealed = false }, "is its seal; the node's record says it is not sealed"},
		{"with its seal at another entry", func(rec *ledgerv1.CeremonyRecord) { rec.SealIndex = rec.Contributions[1].Index + 1 }, "is not its seal"},
		{"with its seal before its last contribution", func(rec *ledgerv1.CeremonyRecord) { rec.SealIndex = rec.Contributions[1].Index }, "the log holds 1"},
		{"with another domain", func(rec *ledgerv1.CeremonyRecord) { rec.Domain = 1 << 24 }, "a phase-1 contribution for domain 16777216"},
	} {
		r, head := reader(lyingCeremonyNode{honest, l.edit})
		if _, err := protocol.AuditCeremony(ctx, r, head, ledger.Phase1ID, zkverify.NewCeremony(), nil); err == nil || !strings.Contains(err.Error(), l.want) {
			t.Fatalf("a record %s: %v, want an error containing %q", l.name, err, l.want)
		}
	}

	lax, err := embedded.Open(embedded.Config{
		Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: zkverify.New(), Ceremony: acceptingCeremony{zkverify.NewCeremony()},
		SigningKey: ledgertest.Key("node"), BlockInterval: 20 * time.Millisecond,
		Params: ledger.Params{ProofDeadlineBlocks: 60, Ceremony: ledger.CeremonyParams{Phase1Domain: 16, MinContributions: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lax.Close()
	c1, err := protocol.ContributePhase1(ctx, lax, alice, "alice")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := lax.Ceremony(ctx, ledger.Phase1ID)
	acc1, err := mpcsetup.DecodePhase1(mustBlob(ctx, t, lax, rec.Contributions[0].Chunks), 16)
	if err != nil {
		t.Fatal(err)
	}
	boundToCarol, _ := acc1.ContributeAs(ctx, carol.Key.Public().(ed25519.PublicKey))
	if err := contribute(ctx, t, lax, bob, ledger.Phase1ID, c1.Hash[:], boundToCarol.Bytes()); err != nil {
		t.Fatalf("the lax node refused: %v", err)
	}
	if _, err := protocol.ContributePhase1(ctx, lax, carol, "carol"); err != nil {
		t.Fatal(err)
	}
	seal(lax)
	r, head = reader(lax)
	_, err = protocol.AuditCeremony(ctx, r, head, ledger.Phase1ID, zkverify.NewCeremony(), t.Logf)
	if !errors.Is(err, ledger.ErrCeremonyContribution) || !strings.Contains(err.Error(), "phase 1: contribution 2 (log entry") {
		t.Fatalf("audit of a chain that accepted a contribution bound to another key: %v", err)
	}
	t.Logf("refused: %v", err)
	// With the lax nodes' own cryptography the same transcript passes: the
	// refusal above is the audit's verification, not a reading error.
	if a, err := protocol.AuditCeremony(ctx, r, head, ledger.Phase1ID, acceptingCeremony{zkverify.NewCeremony()}, nil); err != nil || len(a.Phase1) != 3 {
		t.Fatalf("lax audit: %+v, %v", a, err)
	}
}
