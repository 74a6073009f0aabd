package ledger_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// acceptAll is a ceremony verifier that accepts every accumulator: these
// tests are about the ledger's rules (who may close, when), not the
// cryptography (ledger/zkverify tests that).
type acceptAll struct{}

const fakeContributionSize = 100

func (acceptAll) Phase1InitialHash(uint64) ([32]byte, error) {
	return sha256.Sum256([]byte("initial")), nil
}
func (acceptAll) VerifyPhase1(uint64, []byte, []byte, []byte) error { return nil }
func (acceptAll) CheckPhase2Start(_ ledger.Phase1Transcript, spec []byte, _ int, start []byte) (ledger.Phase2Info, error) {
	return ledger.Phase2Info{Domain: 16, SpecID: sha256.Sum256(spec), AccHash: sha256.Sum256(start), ContributionSize: fakeContributionSize}, nil
}
func (acceptAll) VerifyPhase2([]byte, int, []byte, bool, []byte, []byte) error { return nil }
func (acceptAll) DeriveVerifyingKey(ledger.Phase1Transcript, []byte, int, []byte, []byte, []byte) ([]byte, error) {
	return []byte("vk"), nil
}

type ceremonyChain struct {
	t *testing.T
	s *ledger.Store
}

func newCeremonyChain(t *testing.T, c ledger.CeremonyParams) *ceremonyChain {
	if c.Phase1Domain == 0 {
		c.Phase1Domain = 16
	}
	s := openStore(t, filepath.Join(t.TempDir(), "c.db"), func(o *ledger.Options) {
		o.Params = ledger.Params{ProofDeadlineBlocks: 5, Ceremony: c}
		o.Ceremony = acceptAll{}
	})
	t.Cleanup(func() { s.Close() })
	return &ceremonyChain{t, s}
}

func (c *ceremonyChain) signer(name string) ledger.Signer {
	return ledger.Signer{ChainID: chain, Key: ledgertest.Key(name)}
}

// apply applies one transaction as a block and returns its code.
func (c *ceremonyChain) apply(tx []byte) ledgerv1.Code {
	c.t.Helper()
	return applyBlock(c.t, c.s, tx)[0].Code
}

func (c *ceremonyChain) record(id string) *ledgerv1.CeremonyRecord {
	c.t.Helper()
	rec, err := c.s.Ceremony(c.t.Context(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return rec
}

// contribute uploads a fresh accumulator of size bytes as one chunk and
// contributes it on the ceremony's last hash.
func (c *ceremonyChain) contribute(who ledger.Signer, id string, size int) ledgerv1.Code {
	c.t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if code := c.apply(must(who.CeremonyChunk(b))); code != ledgerv1.Code_CODE_OK {
		c.t.Fatalf("chunk: %s", code)
	}
	h := sha256.Sum256(b)
	return c.apply(must(who.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: id, PreviousHash: c.record(id).LastHash, Chunks: [][]byte{h[:]}})))
}

// The reviewer's front-run: one key contributing MinContributions times
// cannot close phase 1 (TOO_FEW: contributors are counted, not
// contributions); three distinct keys can.
func TestPhase1CloseCountsDistinctContributors(t *testing.T) {
	c := newCeremonyChain(t, ledger.CeremonyParams{MinContributions: 3})
	mallory := c.signer("mallory")
	size := int(ledger.Phase1ContributionSize(16))
	for i := 0; i < 3; i++ {
		if code := c.contribute(mallory, ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
			t.Fatalf("contribution %d: %s", i+1, code)
		}
	}
	if code := c.apply(must(mallory.CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_CEREMONY_TOO_FEW {
		t.Fatalf("close after one key's 3 contributions: %s, want TOO_FEW", code)
	}
	for _, name := range []string{"alice", "bob"} {
		if code := c.contribute(c.signer(name), ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
			t.Fatalf("%s's contribution: %s", name, code)
		}
	}
	if code := c.apply(must(c.signer("carol").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_OK {
		t.Fatalf("close after 3 distinct contributors: %s", code)
	}
}

// The reviewer's fill-the-count attack on a testnet: mallory contributes
// under three fresh keys, enough for MinContributions, but the chain lists
// its validators' contributor keys, so phase 1 stays open (TOO_FEW) until
// both have contributed, whoever closes.
func TestPhase1CloseWaitsForRequiredContributors(t *testing.T) {
	v0, v1 := c0key("validator 0"), c0key("validator 1")
	c := newCeremonyChain(t, ledger.CeremonyParams{MinContributions: 2, Phase1Contributors: []ed25519.PublicKey{v0, v1}})
	size := int(ledger.Phase1ContributionSize(16))
	for _, name := range []string{"mallory 1", "mallory 2", "mallory 3"} {
		if code := c.contribute(c.signer(name), ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
			t.Fatalf("%s: %s", name, code)
		}
	}
	if code := c.apply(must(c.signer("mallory 1").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_CEREMONY_TOO_FEW {
		t.Fatalf("close without the validators: %s, want TOO_FEW", code)
	}
	if code := c.contribute(c.signer("validator 0"), ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
		t.Fatal(code)
	}
	if code := c.apply(must(c.signer("mallory 2").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_CEREMONY_TOO_FEW {
		t.Fatalf("close with one of two validators: %s, want TOO_FEW", code)
	}
	if code := c.contribute(c.signer("validator 1"), ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
		t.Fatal(code)
	}
	if code := c.apply(must(c.signer("mallory 3").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_OK {
		t.Fatalf("close once both validators contributed: %s", code)
	}
}

func c0key(name string) ed25519.PublicKey { return ledgertest.Key(name).Public().(ed25519.PublicKey) }

// Phase 1 may not be closed before Phase1CloseHeight
// (CLOSE_TOO_EARLY), whatever its contributions; from that height it may.
func TestPhase1CloseNotBeforeHeight(t *testing.T) {
	const closeHeight = 8
	c := newCeremonyChain(t, ledger.CeremonyParams{MinContributions: 1, Phase1CloseHeight: closeHeight})
	size := int(ledger.Phase1ContributionSize(16))
	if code := c.contribute(c.signer("alice"), ledger.Phase1ID, size); code != ledgerv1.Code_CODE_OK {
		t.Fatal(code)
	}
	if code := c.apply(must(c.signer("mallory").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_CEREMONY_CLOSE_TOO_EARLY {
		t.Fatalf("close at height 3: %s, want CLOSE_TOO_EARLY", code)
	}
	for {
		h, _, _, err := c.s.Head()
		if err != nil {
			t.Fatal(err)
		}
		if h+1 >= closeHeight {
			break
		}
		applyBlock(t, c.s)
	}
	if code := c.apply(must(c.signer("bob").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_OK {
		t.Fatalf("close at height %d: %s", closeHeight, code)
	}
	if rec := c.record(ledger.Phase1ID); rec.CloseHeight != closeHeight {
		t.Fatalf("closed at %d, want %d", rec.CloseHeight, closeHeight)
	}
}

// sealedPhase1 has two validators contribute to phase 1, closes and
// seals it.
func (c *ceremonyChain) sealedPhase1() {
	c.t.Helper()
	for _, v := range []string{"validator", "validator 2"} {
		if code := c.contribute(c.signer(v), ledger.Phase1ID, int(ledger.Phase1ContributionSize(16))); code != ledgerv1.Code_CODE_OK {
			c.t.Fatal(code)
		}
	}
	if code := c.apply(must(c.signer("validator").CeremonyClose(ledger.Phase1ID))); code != ledgerv1.Code_CODE_OK {
		c.t.Fatal(code)
	}
	applyBlock(c.t, c.s) // the beacon block
	if code := c.apply(must(c.signer("validator").CeremonySeal(ledger.Phase1ID))); code != ledgerv1.Code_CODE_OK {
		c.t.Fatal(code)
	}
}

func (c *ceremonyChain) openPhase2(owner ledger.Signer, id string) {
	c.t.Helper()
	start := []byte("a start of " + id)
	if code := c.apply(must(owner.CeremonyChunk(start))); code != ledgerv1.Code_CODE_OK {
		c.t.Fatal(code)
	}
	h := sha256.Sum256(start)
	if code := c.apply(must(owner.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: id, Spec: []byte("spec"), Batch: 1, Chunks: [][]byte{h[:]}}))); code != ledgerv1.Code_CODE_OK {
		c.t.Fatalf("open: %s", code)
	}
}

// The phase-2 opener (the model owner) contributing MinContributions
// times cannot close (its contributions do not count: TOO_FEW); with that
// many other contributors it can. Before the opened height plus
// Phase2Window the close is CLOSE_TOO_EARLY.
func TestPhase2CloseExcludesOpenerAndWaitsForWindow(t *testing.T) {
	const window = 6
	c := newCeremonyChain(t, ledger.CeremonyParams{MinContributions: 2, Phase2Window: window})
	c.sealedPhase1()
	owner := c.signer("owner")
	c.openPhase2(owner, "m")
	opened := c.record("m").Start.Height
	for i := 0; i < 2; i++ {
		if code := c.contribute(owner, "m", fakeContributionSize); code != ledgerv1.Code_CODE_OK {
			t.Fatalf("owner's contribution %d: %s", i+1, code)
		}
	}
	if code := c.apply(must(owner.CeremonyClose("m"))); code != ledgerv1.Code_CODE_CEREMONY_CLOSE_TOO_EARLY {
		t.Fatalf("close inside the window: %s, want CLOSE_TOO_EARLY", code)
	}
	for {
		h, _, _, err := c.s.Head()
		if err != nil {
			t.Fatal(err)
		}
		if h+1 >= opened+window {
			break
		}
		applyBlock(t, c.s)
	}
	if code := c.contribute(c.signer("alice"), "m", fakeContributionSize); code != ledgerv1.Code_CODE_OK {
		t.Fatal(code)
	}
	if code := c.apply(must(owner.CeremonyClose("m"))); code != ledgerv1.Code_CODE_CEREMONY_TOO_FEW {
		t.Fatalf("close with the owner's 2 and alice's 1 contribution: %s, want TOO_FEW", code)
	}
	if code := c.contribute(c.signer("bob"), "m", fakeContributionSize); code != ledgerv1.Code_CODE_OK {
		t.Fatal(code)
	}
	if code := c.apply(must(owner.CeremonyClose("m"))); code != ledgerv1.Code_CODE_OK {
		t.Fatalf("close with 2 contributors besides the owner: %s", code)
	}
}

// A contribution naming one chunk twice is BAD_CHUNK_LIST even when its
// size needs two chunks (phase 1 at 2^11: 384 KiB), and the same list
// with two distinct chunks of the right total length is accepted.
func TestContributionNamingAChunkTwiceRefused(t *testing.T) {
	c := newCeremonyChain(t, ledger.CeremonyParams{Phase1Domain: 1 << 11})
	alice := c.signer("alice")
	size := ledger.Phase1ContributionSize(1 << 11)
	if size <= ledger.MaxChunkBytes || size > 2*ledger.MaxChunkBytes {
		t.Fatalf("a phase-1 contribution at 2^11 has %d bytes: not two chunks", size)
	}
	b := make([]byte, size)
	rand.Read(b)
	half := b[:size/2]
	var hashes [][]byte
	for _, part := range [][]byte{half, b[size/2:]} {
		if code := c.apply(must(alice.CeremonyChunk(part))); code != ledgerv1.Code_CODE_OK {
			t.Fatal(code)
		}
		h := sha256.Sum256(part)
		hashes = append(hashes, h[:])
	}
	last := c.record(ledger.Phase1ID).LastHash
	if code := c.apply(must(alice.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: ledger.Phase1ID, PreviousHash: last, Chunks: [][]byte{hashes[0], hashes[0]}}))); code != ledgerv1.Code_CODE_CEREMONY_BAD_CHUNK_LIST {
		t.Fatalf("one chunk named twice: %s, want BAD_CHUNK_LIST", code)
	}
	if code := c.apply(must(alice.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: ledger.Phase1ID, PreviousHash: last, Chunks: hashes}))); code != ledgerv1.Code_CODE_OK {
		t.Fatalf("two distinct chunks of the right size: %s", code)
	}
}
