package ledger_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// FuzzDecodeTx: the decoder never panics, and whatever it accepts is
// canonical (re-encoding gives the same bytes), signed, and within limits.
func FuzzDecodeTx(f *testing.F) {
	fx := ledgertest.NewFixture(chain, "fuzz")
	r := fx.NewRequest("m", "r", 3)
	for _, tx := range [][]byte{fx.Register("m"), fx.Receipt(r), fx.Reveal(r), fx.Proof([]*ledgertest.Request{r}, false), fx.Verdict("r", true), nil, {0x0a, 0x00},
		fx.Transfer(fx.Client, fx.Server.Public().(ed25519.PublicKey), 5), fx.Offer("m", 10, 100, 5), fx.Unbond("m", 1), fx.Withdraw("m"), fx.Dispute(r, 0)} {
		f.Add(tx)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, rj := ledger.DecodeTx(chain, raw)
		if rj != nil {
			if tx != nil || rj.Code == ledgerv1.Code_CODE_OK {
				t.Fatalf("rejection %v with a transaction", rj)
			}
			return
		}
		if _, dispute := tx.Body.GetTx().(*ledgerv1.TxBody_Dispute); len(raw) > ledger.MaxDisputeTxBytes || (!dispute && len(raw) > ledger.MaxTxBytes) {
			t.Fatal("accepted an oversized transaction")
		}
		var stx ledgerv1.SignedTx
		if err := proto.Unmarshal(raw, &stx); err != nil {
			t.Fatal(err)
		}
		again, err := proto.MarshalOptions{Deterministic: true}.Marshal(&stx)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatal("accepted a non-canonical transaction")
		}
		if tx.Body.GetChainId() != chain {
			t.Fatal("accepted a transaction of another chain")
		}
	})
}

// FuzzApply drives the state machine with mutated, correctly signed
// bodies (seeded with one of each transaction type) on a market chain that
// already has a model with an offer, priced receipts and a reveal: it never
// panics, a rejected transaction changes nothing, and an accepted one adds
// exactly one entry (conservation is TestMarketConservationProperty's).
func FuzzApply(f *testing.F) {
	fx := ledgertest.NewFixture(chain, "fuzz")
	r1, r2, r3 := fx.NewRequest("m", "r1", 3), fx.NewRequest("m", "r2", 3), fx.NewRequest("m", "r3", 4)
	for _, r := range []*ledgertest.Request{r1, r2, r3} {
		r.Price = 10
	}
	for _, tx := range [][]byte{fx.Register("m2"), fx.Receipt(r3), fx.Reveal(r2), fx.Proof([]*ledgertest.Request{r1}, false), fx.Verdict("r1", true),
		fx.Transfer(fx.Client, fx.Owner.Public().(ed25519.PublicKey), 7), fx.Offer("m", 12, 50, 3), fx.Unbond("m", 20), fx.Withdraw("m"), fx.Dispute(r1, 0)} {
		var stx ledgerv1.SignedTx
		if err := proto.Unmarshal(tx, &stx); err != nil {
			f.Fatal(err)
		}
		f.Add(stx.Body, uint8(0))
		f.Add(stx.Body, uint8(1))
		f.Add(stx.Body, uint8(2))
	}
	path := f.TempDir() + "/fuzz.db"
	s, err := ledger.Open(path, ledger.Options{ChainID: chain, Verifier: ledgertest.FakeVerifier{}, Disputes: ledgertest.FakeDisputes{}, SigningKey: ledgertest.Key("node"),
		Params: fx.FundedParams(1000, 100_000)})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	b, _ := s.Begin(1)
	for _, tx := range [][]byte{fx.Register("m"), fx.Offer("m", 10, 500, 5), fx.Receipt(r1), fx.Receipt(r2), fx.Reveal(r1)} {
		if r, err := b.Apply(tx); err != nil || !r.OK() {
			f.Fatalf("setup: %v %v", r, err)
		}
	}
	if err := b.Commit(); err != nil {
		f.Fatal(err)
	}
	keys := []ed25519.PrivateKey{fx.Owner, fx.Server, fx.Client}
	f.Fuzz(func(t *testing.T, body []byte, who uint8) {
		key := keys[int(who)%len(keys)]
		d := ledger.SigningDigest(body)
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ledgerv1.SignedTx{Body: body, Signer: key.Public().(ed25519.PublicKey), Signature: ed25519.Sign(key, d[:])})
		if err != nil {
			t.Skip()
		}
		_, size0, app0, _ := s.Head()
		b, err := s.Begin(2)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Discard() // never commit: every input starts from the same state
		r, err := b.Apply(raw)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if r.OK() != (b.Size() == size0+1) || (!r.OK() && b.Size() != size0) {
			t.Fatalf("code %v but log size %d -> %d", r.Code, size0, b.Size())
		}
		if !r.OK() {
			cp, err := b.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cp.AppHash, app0) {
				t.Fatalf("rejected (%v) transaction changed the app hash", r.Code)
			}
		}
	})
}
