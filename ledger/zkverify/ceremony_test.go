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

	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// ceremonyNode is an embedded node of a chain whose phase 1 has domain n,
// with a real ceremony verifier, cutting a block every 20 ms (heights must
// advance for the beacon).
func ceremonyNode(t testing.TB, n uint64, min uint32, insecure bool) *embedded.Node {
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
	next, _ := acc1.ContributeAs(ctx, bob.Key.Public().(ed25519.PublicKey))
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
	// transaction), naming the last hash so that it gets past the cheap
	// checks.
	wantCode(t, "replayed contribution", submitTx(ctx, n, must(bob.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: c1.Hash[:], Chunks: rec.Contributions[0].Chunks}))), ledgerv1.Code_CODE_CEREMONY_REPLAYED)
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

	// Credit theft: carol takes bob's contribution from the chunk store
	// (bob uploaded it, his transaction is not in yet) and submits it as
	// hers. Its proofs of knowledge are bound to bob's key, so the node
	// refuses it, and does not remember the refusal against bob's.
	carol := ledger.Signer{ChainID: chain, Key: ledgertest.Key("carol")}
	wantCode(t, "bob's contribution submitted by carol", contribute(ctx, t, n, carol, ledger.Phase1ID, c1.Hash[:], next.Bytes()), ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION)
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

// TestThreePartyCeremonyKeyRegistersProvesAndVerifies is the issue's
// acceptance test: on a chain whose phase 1 fits the tiny model's circuit
// (2^14), three parties (the node's operator, the model owner, the client)
// contribute to phase 1 and to the circuit's phase 2, each contribution
// verified by the node before it is accepted; the node derives the
// verifying key at the seal. A prover rebuilds the proving key from the
// transcript it fetches; the model registered with that key proves and
// its proof verifies on the ledger; a key not derived from the transcript
// (a ceremony of one) is refused at registration and by the client's
// check; a tampered or another circuit's phase-2 start and a tampered
// phase-2 contribution are refused with their own codes.
func TestThreePartyCeremonyKeyRegistersProvesAndVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real 3-party ceremony at 2^14")
	}
	ctx := context.Background()
	m := tinyModel(7)
	spec, err := circuits.SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	// Two distinct contributors: phase 2 does not count its opener, the
	// owner.
	n := ceremonyNode(t, 1<<14, 2, false)
	f := ledgertest.NewFixture(chain, "zk")
	op := ledger.Signer{ChainID: chain, Key: ledgertest.Key("operator")}
	owner := ledger.Signer{ChainID: chain, Key: f.Owner}
	client := ledger.Signer{ChainID: chain, Key: f.Client}

	// Phase 1 and phase 2, three contributions each, every one verified
	// by the node before it is accepted.
	res, err := protocol.RunCeremony(ctx, n, protocol.CeremonyConfig{
		Contributors: []ledger.Signer{op, owner, client}, Names: []string{"operator", "owner", "client"},
		Opener: owner, ID: "tiny-b2", Spec: spec, Batch: 2, Poll: 10 * time.Millisecond, Progress: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}

	// Phase-2 starts that are not this circuit's: another batch's (another
	// shape), and this circuit's with one [K]₁ changed.
	p1, err := n.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Contributions) != 3 || !p1.Sealed {
		t.Fatalf("phase 1: %v", p1)
	}
	last, err := mpcsetup.DecodePhase1(mustBlob(ctx, t, n, p1.Contributions[2].Chunks), p1.Domain)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := zk.Compile(spec, 2)
	if err != nil {
		t.Fatal(err)
	}
	srs, err := mpcsetup.SealPhase1To(ctx, last, p1.Beacon, int(zk.Domain(r2)))
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := mpcsetup.Phase2StartFromSRS(ctx, r2, srs)
	if err != nil {
		t.Fatal(err)
	}
	open := func(id string, batch uint32, start []byte) error {
		chunks, err := protocol.UploadBlob(ctx, n, owner, start)
		if err != nil {
			t.Fatal(err)
		}
		return submitTx(ctx, n, must(owner.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: id, Spec: spec.Canonical(), Batch: batch, Chunks: chunks})))
	}
	wantCode(t, "batch 2's start opening batch 1's circuit", open("second", 1, good.Bytes()), ledgerv1.Code_CODE_CEREMONY_WRONG_CIRCUIT)
	tampered, err := mpcsetup.DecodePhase2Start(good.Bytes(), r2, int(zk.Domain(r2)))
	if err != nil {
		t.Fatal(err)
	}
	tampered.VKK[0] = tampered.VKK[1]
	wantCode(t, "a start with a changed [K]₁", open("second", 2, tampered.Bytes()), ledgerv1.Code_CODE_CEREMONY_WRONG_CIRCUIT)
	if _, err := n.Ceremony(ctx, "second"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a refused start opened a ceremony: %v", err)
	}
	wantCode(t, "a second ceremony with a taken id", open("tiny-b2", 1, good.Bytes()), ledgerv1.Code_CODE_CEREMONY_EXISTS)
	if err := open("second", 2, good.Bytes()); err != nil {
		t.Fatalf("the circuit's start: %v", err)
	}
	sec, _ := n.Ceremony(ctx, "second")
	// Credit theft in phase 2: the operator's contribution, submitted by
	// the client first, is refused; the operator's own goes in.
	opsOwn := mpcsetup.ContributePhase2As(good.Acc, op.Key.Public().(ed25519.PublicKey))
	wantCode(t, "the operator's phase-2 contribution submitted by the client", contribute(ctx, t, n, client, "second", sec.LastHash, mpcsetup.Phase2Bytes(opsOwn)), ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION)
	// An unbound contribution (gnark's, proofs on the previous hash alone)
	// is refused on the ledger too.
	wantCode(t, "a phase-2 contribution whose proofs name no contributor", contribute(ctx, t, n, client, "second", sec.LastHash, mpcsetup.Phase2Bytes(mpcsetup.ContributePhase2(good.Acc))), ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION)
	forged := mpcsetup.ContributePhase2(good.Acc)
	forged.Parameters.G1.PKK[0] = forged.Parameters.G1.PKK[1]
	wantCode(t, "a phase-2 contribution with a changed point", contribute(ctx, t, n, client, "second", sec.LastHash, mpcsetup.Phase2Bytes(forged)), ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION)
	// The first ceremony's last accumulator continued: not this one's.
	first := new(gmpc.Phase2)
	if _, err := first.ReadFrom(bytes.NewReader(mustBlob(ctx, t, n, res.Record.Contributions[2].Chunks))); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a contribution on another ceremony's accumulator", contribute(ctx, t, n, client, "second", sec.LastHash, mpcsetup.Phase2Bytes(mpcsetup.ContributePhase2(first))), ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING)
	if err := contribute(ctx, t, n, op, "second", sec.LastHash, mpcsetup.Phase2Bytes(opsOwn)); err != nil {
		t.Fatalf("the operator's own phase-2 contribution, after the client's copy was refused: %v", err)
	}
	if sec, _ = n.Ceremony(ctx, "second"); len(sec.Contributions) != 1 || !bytes.Equal(sec.Contributions[0].Contributor, op.Key.Public().(ed25519.PublicKey)) {
		t.Fatalf("phase 2 after the theft attempt: %v", sec.Contributions)
	}
	wantCode(t, "a close of phase 2 by another than its opener", submitTx(ctx, n, must(client.CeremonyClose("second"))), ledgerv1.Code_CODE_UNAUTHORIZED)
	wantCode(t, "registration naming an unsealed ceremony", func() error {
		raw, _ := owner.RegisterModel(&ledgerv1.RegisterModel{ModelId: "x", Architecture: "tiny", Commitment: make([]byte, 32), VerifyingKey: []byte("k"),
			OutputsPerChallenge: 10, Spec: spec.Canonical(), ProofBatch: 2, CeremonyId: "second"}, f.Server)
		return submitTx(ctx, n, raw)
	}(), ledgerv1.Code_CODE_CEREMONY_NOT_SEALED)

	rec := res.Record
	if len(res.Phase1) != 3 || len(res.Phase2) != 3 || len(rec.Contributions) != 3 || !rec.Sealed {
		t.Fatalf("ceremony: %d phase-1 and %d phase-2 contributions, record %v", len(res.Phase1), len(res.Phase2), rec)
	}
	vkb, err := res.Key.VK.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(vkb); !bytes.Equal(h[:], rec.VerifyingKeyHash) {
		t.Fatalf("the prover's key %x is not the ledger's %x", h[:8], rec.VerifyingKeyHash[:8])
	}

	// A prover that was not the opener rebuilds the key from the
	// transcript it fetches from the ledger; it proves with that key.
	// It caches the key under its data directory and loads it from there
	// the second time.
	keyDir := t.TempDir()
	fetched, err := protocol.CeremonyKeys(ctx, n, "tiny-b2", keyDir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if fetched.VK.Hash() != res.Key.VK.Hash() {
		t.Fatalf("the key rebuilt from the ledger %x is not the opener's %x", fetched.VK.Hash(), res.Key.VK.Hash())
	}
	again, err := protocol.CeremonyKeys(ctx, n, "tiny-b2", keyDir, func(string, ...any) { t.Error("the cached key was rebuilt") })
	if err != nil || again.VK.Hash() != fetched.VK.Hash() {
		t.Fatalf("cached ceremony key: %v", err)
	}
	rp, err := proveWith(ctx, m, spec, fetched)
	if err != nil {
		t.Fatal(err)
	}
	reg := func(id, ceremony string, vk []byte) error {
		raw, err := owner.RegisterModel(&ledgerv1.RegisterModel{
			ModelId: id, Architecture: "tiny", Commitment: rp.commitment, VerifyingKey: vk,
			OutputsPerChallenge: 10, Spec: rp.spec, ProofBatch: 2, CeremonyId: ceremony}, f.Server)
		if err != nil {
			t.Fatal(err)
		}
		return submitTx(ctx, n, raw)
	}
	// A ceremony of one's key for the same circuit: valid for the spec,
	// not derived from the transcript.
	own := setup(t)
	wantCode(t, "registration with the owner's own key", reg("tiny", "tiny-b2", own.vk), ledgerv1.Code_CODE_CEREMONY_KEY_MISMATCH)
	wantCode(t, "registration without a ceremony", reg("tiny", "", own.vk), ledgerv1.Code_CODE_CEREMONY_REQUIRED)
	wantCode(t, "registration naming phase 1", reg("tiny", ledger.Phase1ID, vkb), ledgerv1.Code_CODE_UNKNOWN_CEREMONY)
	if err := reg("tiny", "tiny-b2", vkb); err != nil {
		t.Fatalf("registration with the derived key: %v", err)
	}

	// The client's check, through the trust reader.
	tr := &trust.Reader{API: n, Anchor: trust.Anchor{ChainID: chain, NodeKey: ledgertest.Key("node").Public().(ed25519.PublicKey)}}
	head, err := tr.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.ReadRegistration(ctx, tr, head, "tiny", protocol.Pin{RequireCeremony: true})
	if err != nil || got.Ceremony != "tiny-b2" || got.VK.Hash() != res.Key.VK.Hash() {
		t.Fatalf("client reading the registration: %v %v", got, err)
	}
	if err := protocol.CheckCeremonyKey(ctx, tr, head, "tiny-b2", rp.spec, 2, own.vk); !errors.Is(err, protocol.ErrKeyNotDerived) {
		t.Fatalf("client check of a key not derived from the transcript: %v, want ErrKeyNotDerived", err)
	}

	// A third party re-verifies the whole transcript from verified log
	// entries (`veil setup audit --model tiny`): six contributions, the
	// start, and the key re-derived from them, which must be the one the
	// logged registration carries. Nodes whose records claim another key,
	// leave out the last phase-2 contribution, or claim another beacon with
	// the key it would give are refused; the last only by the model audit,
	// which compares with the registration.
	v := zkverify.NewCeremony()
	audit := func(api ledger.API) (*protocol.ModelAudit, error) {
		r, head := nodeReader(ctx, t, api)
		return protocol.AuditModel(ctx, r, head, "tiny", v, t.Logf)
	}
	a, err := audit(n)
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(vkb); len(a.Phase1) != 3 || len(a.Phase2) != 3 || !bytes.Equal(a.VerifyingKeyHash, h[:]) || a.Batch != 2 || !bytes.Equal(a.Phase2[0].Contributor, op.Public()) {
		t.Fatalf("audit: %+v", a)
	}
	fake := bytes.Repeat([]byte{7}, 32)
	vkFake, err := v.DeriveVerifyingKey(ledger.Phase1Transcript{Domain: p1.Domain, Last: mustBlob(ctx, t, n, p1.Contributions[2].Chunks), Beacon: p1.Beacon},
		rec.Spec, 2, mustBlob(ctx, t, n, rec.Start.Chunks), mustBlob(ctx, t, n, rec.Contributions[2].Chunks), fake)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		edit func(*ledgerv1.CeremonyRecord)
		want string
	}{
		"another verifying key":                  {func(r *ledgerv1.CeremonyRecord) { r.VerifyingKeyHash = make([]byte, 32) }, "the node's record claims"},
		"the last phase-2 contribution left out": {func(r *ledgerv1.CeremonyRecord) { r.Contributions = r.Contributions[:2] }, "the node's record leaves out or misplaces"},
		"another beacon and its key": {func(r *ledgerv1.CeremonyRecord) {
			h := sha256.Sum256(vkFake)
			r.Beacon, r.VerifyingKeyHash = fake, h[:]
		}, "not the key"},
	} {
		lie := lyingCeremonyNode{n, func(r *ledgerv1.CeremonyRecord) {
			if r.CeremonyId == "tiny-b2" {
				c.edit(r)
			}
		}}
		if _, err := audit(lie); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}

	// Prove and verify on the ledger with the ceremony's key.
	r1 := request(f, rp, "r1")
	for _, tx := range [][]byte{f.Receipt(r1), f.Reveal(r1)} {
		if err := submitTx(ctx, n, tx); err != nil {
			t.Fatal(err)
		}
	}
	bad := bytes.Clone(rp.proof)
	bad[len(bad)-10] ^= 1
	wantCode(t, "tampered proof", submitTx(ctx, n, proofTx(f, rp, []string{"r1"}, bad)), ledgerv1.Code_CODE_PROOF_INVALID)
	if err := submitTx(ctx, n, proofTx(f, rp, []string{"r1"}, rp.proof)); err != nil {
		t.Fatalf("proof with the ceremony's key: %v", err)
	}
	st, err := n.Request(ctx, f.KeyOf("tiny", "r1"))
	if err != nil || st.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN {
		t.Fatalf("r1: %v %v", st, err)
	}
	for _, c := range res.Phase2 {
		if pos, _, err := protocol.InTranscript(ctx, n, "tiny-b2", c.Hash[:]); err != nil || pos == 0 {
			t.Fatalf("contribution %x not in the transcript: %v", c.Hash[:8], err)
		}
	}
}
