package ledger_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"path/filepath"
	"reflect"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// The ceremony's parameters validate and round-trip with the others.
func TestCeremonyParams(t *testing.T) {
	for name, c := range map[string]ledger.CeremonyParams{
		"domain not a power of two": {Phase1Domain: 48},
		"domain of 1":               {Phase1Domain: 1},
		"domain over 2^24":          {Phase1Domain: 1 << 25},
		"beacon delay too long":     {Phase1Domain: 16, BeaconDelay: 1 << 33},
		"short contributor key":     {Phase1Domain: 16, Phase1Contributors: []ed25519.PublicKey{make([]byte, 31)}},
		"contributor listed twice":  {Phase1Domain: 16, Phase1Contributors: []ed25519.PublicKey{make([]byte, 32), make([]byte, 32)}},
	} {
		if err := (ledger.Params{ProofDeadlineBlocks: 5, Ceremony: c}).Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p := ledger.Params{ProofDeadlineBlocks: 5, Ceremony: ledger.CeremonyParams{Phase1Domain: 1 << 17, MinContributions: 3, BeaconDelay: 2, InsecureOwnerKeys: true, Phase1CloseHeight: 40, Phase2Window: 30,
		Phase1Contributors: []ed25519.PublicKey{ledgertest.Key("v0").Public().(ed25519.PublicKey), ledgertest.Key("v1").Public().(ed25519.PublicKey)}}}
	back, err := ledger.ParamsFromProto(p.Proto())
	if err != nil || !back.Equal(p) || !reflect.DeepEqual(back.Ceremony, p.Ceremony) {
		t.Fatalf("ceremony parameters do not round-trip: %+v %v", back.Ceremony, err)
	}
}

// Without a phase 1 in the chain's parameters there is no ceremony to
// contribute to, and registrations keep the owner's key (the old path);
// with one, a node without a ceremony verifier refuses what it cannot
// verify, and registrations must name a ceremony unless the chain is
// explicitly INSECURE.
func TestCeremonyRulesWithoutVerifier(t *testing.T) {
	f := ledgertest.NewFixture(chain, "cer")
	chunk := must(ledger.Signer{ChainID: chain, Key: f.Owner}.CeremonyChunk([]byte("a piece of an accumulator")))
	h := sha256.Sum256([]byte("a piece of an accumulator"))
	contribution := must(ledger.Signer{ChainID: chain, Key: f.Owner}.CeremonyContribution(&ledgerv1.CeremonyContribution{
		CeremonyId: ledger.Phase1ID, PreviousHash: make([]byte, 32), Chunks: [][]byte{h[:]}}))

	plain := openStore(t, filepath.Join(t.TempDir(), "plain.db"))
	defer plain.Close()
	if r := applyBlock(t, plain, chunk, contribution, f.Register("m")); r[0].Code != ledgerv1.Code_CODE_OK ||
		r[1].Code != ledgerv1.Code_CODE_UNKNOWN_CEREMONY || r[2].Code != ledgerv1.Code_CODE_OK {
		t.Fatalf("chain without a phase 1: %v", r)
	}

	withPhase1 := func(insecure bool) *ledger.Store {
		s := openStore(t, filepath.Join(t.TempDir(), "p1.db"), func(o *ledger.Options) {
			o.Params = ledger.Params{ProofDeadlineBlocks: 5, Ceremony: ledger.CeremonyParams{Phase1Domain: 16, InsecureOwnerKeys: insecure}}
		})
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := withPhase1(false)
	r := applyBlock(t, s, chunk, contribution, f.Register("m"), chunk)
	if r[0].Code != ledgerv1.Code_CODE_OK || r[1].Code != ledgerv1.Code_CODE_CEREMONY_UNSUPPORTED || r[2].Code != ledgerv1.Code_CODE_CEREMONY_REQUIRED ||
		r[3].Code != ledgerv1.Code_CODE_DUPLICATE_TX {
		t.Fatalf("chain with a phase 1, node without a verifier: %v", r)
	}
	if _, err := s.Ceremony(t.Context(), ledger.Phase1ID); err == nil {
		t.Fatal("a node without a verifier served a phase-1 record")
	}
	if b, err := s.Chunk(t.Context(), h[:]); err != nil || string(b) != "a piece of an accumulator" {
		t.Fatalf("stored chunk: %q %v", b, err)
	}
	if r := applyBlock(t, withPhase1(true), f.Register("m")); r[0].Code != ledgerv1.Code_CODE_OK {
		t.Fatalf("INSECURE chain refused an owner's key: %v", r)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
