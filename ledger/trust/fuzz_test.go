package trust

import (
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// FuzzVerifyQuorumCheckpoint: whatever bytes a node sends as a signed
// header and validator set, verification returns an error, never panics.
func FuzzVerifyQuorumCheckpoint(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, []byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00}, []byte{0x0a, 0x04, 0x0a, 0x00, 0x12, 0x00})
	val := []*ledgerv1.Validator{{PubKey: make([]byte, 32), Power: 1}}
	f.Fuzz(func(t *testing.T, header, vals []byte) {
		qc := &ledgerv1.QuorumCheckpoint{Checkpoint: &ledgerv1.Checkpoint{Origin: "veil-ledger/c", Height: 1}, SignedHeader: header, ValidatorSet: vals}
		if err := VerifyQuorumCheckpoint(qc, "c", val); err == nil {
			t.Fatal("random bytes verified as a quorum checkpoint")
		}
	})
}
