package query

import (
	"encoding/hex"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// VerifiedEntry is a log entry checked offline by VerifyEntryJSON.
type VerifiedEntry struct {
	Index   uint64 `json:"index"`
	Kind    string `json:"kind"` // the transaction's type, for display only
	TxHash  string `json:"tx_hash"`
	LogSize uint64 `json:"log_size"`
	Root    string `json:"root"`
	Signer  string `json:"signer"`
	// KeyFromEntry tells that no trusted key was given: the checkpoint was
	// checked against the key it names, which shows integrity, not who
	// signed it.
	KeyFromEntry bool `json:"key_from_entry"`
}

// VerifyEntryJSON parses an entry in the JSON form `veil ledger entry` and
// /api/v1/entries/N give, and checks that its checkpoint is signed by key
// (nil: by the key the checkpoint names) and that its RFC 6962 inclusion
// proof leads from the transaction to the checkpoint's root.
func VerifyEntryJSON(data, key []byte) (*VerifiedEntry, error) {
	var e ledgerv1.Entry
	if err := protojson.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("parse entry: %w", err)
	}
	if err := ledger.VerifyInclusion(&e, key); err != nil {
		return nil, fmt.Errorf("entry %d does NOT verify: %w", e.Index, err)
	}
	kind, _ := ledger.Describe(e.Tx)
	h := ledger.TxHash(e.Tx)
	return &VerifiedEntry{Index: e.Index, Kind: kind, TxHash: hex.EncodeToString(h[:]), LogSize: e.Checkpoint.Size,
		Root: hex.EncodeToString(e.Checkpoint.RootHash), Signer: hex.EncodeToString(e.Checkpoint.SignerKey), KeyFromEntry: key == nil}, nil
}

// WriteText prints the result in one line.
func (v *VerifiedEntry) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "OK: entry %d (%s, tx %s) is in the log of size %d with root %s, checkpoint signed by %s\n",
		v.Index, v.Kind, v.TxHash, v.LogSize, v.Root, v.Signer)
	return err
}
