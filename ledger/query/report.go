package query

// What the veil command's ledger queries return, with their text forms.

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// DialSigner connects to the node at addr and returns a signer for its
// chain with key. The caller closes the client.
func DialSigner(ctx context.Context, addr string, key ed25519.PrivateKey) (*Client, ledger.Signer, error) {
	c, err := Dial(addr)
	if err != nil {
		return nil, ledger.Signer{}, err
	}
	info, err := c.ChainInfo(ctx)
	if err != nil {
		c.Close()
		return nil, ledger.Signer{}, err
	}
	return c, ledger.Signer{ChainID: info.GetChainId(), Key: key}, nil
}

// OfferTable is the providers' offers as a table.
type OfferTable []*ledgerv1.OfferRecord

// WriteText prints one offer per line.
func (r OfferTable) WriteText(w io.Writer) error {
	if len(r) == 0 {
		_, err := fmt.Fprintln(w, "no offers")
		return err
	}
	fmt.Fprintf(w, "%-28s %-22s %12s %14s %12s %7s %6s %6s %6s %12s %s\n", "model", "provider", "price/image", "stake", "reserved", "proven", "paid", "missed", "frauds", "slashed", "endpoint")
	for _, o := range r {
		fmt.Fprintf(w, "%-28s %-22s %12s %14s %12s %7d %6d %6d %6d %12s %s\n", o.ModelId, hex.EncodeToString(o.Provider)[:16]+"…", ledger.FormatAmount(o.Price),
			ledger.FormatAmount(o.Bonded), ledger.FormatAmount(o.Reserved), o.Proven, o.Paid, o.Missed, o.Frauds, ledger.FormatAmount(o.Slashed), o.Endpoint)
	}
	return nil
}

// Balance is an account's balance.
type Balance struct {
	Account string `json:"account"`
	Balance uint64 `json:"balance"`
}

// AccountBalance reads the balance of account.
func AccountBalance(ctx context.Context, c *Client, account ed25519.PublicKey) (Balance, error) {
	a, err := c.Account(ctx, account)
	return Balance{Account: hex.EncodeToString(account), Balance: a.GetBalance()}, err
}

// WriteText prints the balance in VEIL.
func (r Balance) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "account %s: %s VEIL\n", r.Account, ledger.FormatAmount(r.Balance))
	return err
}

// Status is a node's latest checkpoint, its signature checked against the
// key it names (its JSON form is the checkpoint's).
type Status struct{ *ledgerv1.Checkpoint }

// StatusOf fetches and checks the node's latest checkpoint.
func StatusOf(ctx context.Context, c *Client) (*Status, error) {
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if err := ledger.VerifyCheckpoint(cp, nil); err != nil {
		return nil, fmt.Errorf("the node's checkpoint does not verify: %w", err)
	}
	return &Status{cp}, nil
}

// WriteText prints the checkpoint's signed note.
func (s *Status) WriteText(w io.Writer) error { _, err := fmt.Fprintf(w, "%s", s.Note); return err }

// EntryJSON fetches entry index with its inclusion proof and checkpoint, as
// indented JSON (what VerifyEntryJSON reads).
func EntryJSON(ctx context.Context, c *Client, index uint64) ([]byte, error) {
	e, err := c.Entry(ctx, index)
	if err != nil {
		return nil, err
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// VerifyEntryFile is VerifyEntryJSON on the file at path, or on stdin
// (up to 4 MiB) when path is "-".
func VerifyEntryFile(path string, stdin io.Reader, key []byte) (*VerifiedEntry, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 4<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read entry: %w", err)
	}
	res, err := VerifyEntryJSON(b, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}
