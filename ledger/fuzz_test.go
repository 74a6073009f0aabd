package ledger_test

import (
	"bytes"
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
	for _, tx := range [][]byte{fx.Register("m"), fx.Receipt(r), fx.Reveal(r), fx.Proof([]*ledgertest.Request{r}, false), fx.Verdict("r", true), nil, {0x0a, 0x00}} {
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
		if len(raw) > ledger.MaxTxBytes {
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
