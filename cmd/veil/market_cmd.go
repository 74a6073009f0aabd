package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/protocol"
)

// parseAmount reads an amount of VEIL ("12", "0.5", "0.000001") into the
// chain's smallest unit without floating point.
func parseAmount(s string) (uint64, error) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" || len(frac) > 6 || strings.HasPrefix(whole, "-") {
		return 0, fmt.Errorf("amount %q: want VEIL with at most 6 decimals", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %v", s, err)
	}
	f := uint64(0)
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("amount %q: %v", s, err)
		}
	}
	if w > ledger.MaxSupply/ledger.Unit {
		return 0, fmt.Errorf("amount %q exceeds the maximum supply", s)
	}
	return w*ledger.Unit + f, nil
}

func formatAmount(v uint64) string { return fmt.Sprintf("%d.%06d", v/ledger.Unit, v%ledger.Unit) }

// parseFunds reads --fund KEY=AMOUNT flags into genesis allocations.
func parseFunds(fs []string) ([]ledger.Allocation, error) {
	var out []ledger.Allocation
	for _, f := range fs {
		k, a, ok := strings.Cut(f, "=")
		key, err := hex.DecodeString(k)
		if !ok || err != nil || len(key) != ed25519.PublicKeySize {
			return nil, usageError("--fund %q: want KEY=AMOUNT with KEY an ed25519 public key in hex", f)
		}
		amt, err := parseAmount(a)
		if err != nil {
			return nil, usageError("--fund: %v", err)
		}
		out = append(out, ledger.Allocation{Account: key, Amount: amt})
	}
	return out, nil
}

// marketParams are the market's defaults with genesis allocations.
func marketParams(deadline uint64, funds []ledger.Allocation) ledger.Params {
	m := ledger.MarketDefaults()
	m.Genesis = funds
	return ledger.Params{ProofDeadlineBlocks: deadline, Market: m}
}

type offersResult []*ledgerv1.OfferRecord

func (r offersResult) WriteText(w io.Writer) error {
	if len(r) == 0 {
		_, err := fmt.Fprintln(w, "no offers")
		return err
	}
	fmt.Fprintf(w, "%-28s %-22s %12s %14s %12s %7s %6s %6s %6s %12s %s\n", "model", "provider", "price/image", "stake", "reserved", "proven", "paid", "missed", "frauds", "slashed", "endpoint")
	for _, o := range r {
		fmt.Fprintf(w, "%-28s %-22s %12s %14s %12s %7d %6d %6d %6d %12s %s\n", o.ModelId, hex.EncodeToString(o.Provider)[:16]+"…", formatAmount(o.Price),
			formatAmount(o.Bonded), formatAmount(o.Reserved), o.Proven, o.Paid, o.Missed, o.Frauds, formatAmount(o.Slashed), o.Endpoint)
	}
	return nil
}

func newProvidersCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "providers",
		Short: "List the providers' offers on a ledger: price, stake and public record",
		Long: `List every model's offer: the provider (the model's server key), its
endpoint and price per image, the stake it has bonded (and how much of it
backs pending requests), and its public record: requests proven and paid,
missed (refunded and slashed at the deadline), frauds proven by disputes,
stake slashed. The record is the node's state: a hint; every entry behind
it is in the log (veil ledger entry).`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		var out offersResult
		err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
			out, err = c.Offers(ctx)
			return err
		})
		return out, err
	})
	cmd.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
	return cmd
}

type accountResult struct {
	Account string `json:"account"`
	Balance uint64 `json:"balance"`
}

func (r accountResult) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "account %s: %s VEIL\n", r.Account, formatAmount(r.Balance))
	return err
}

func newAccountCmd(g *globalOptions) *cobra.Command {
	var addr, key string
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Print an account's balance (default: this client's ledger identity)",
		Args:  cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		var pub ed25519.PublicKey
		if key != "" {
			k, err := hex.DecodeString(key)
			if err != nil || len(k) != ed25519.PublicKeySize {
				return nil, usageError("--key: want 64 hex digits (an ed25519 public key)")
			}
			pub = k
		} else {
			dir, err := g.ensureDataDir()
			if err != nil {
				return nil, err
			}
			id, err := protocol.LoadOrCreateIdentity(filepath.Join(dir, "client", "identity.key"))
			if err != nil {
				return nil, err
			}
			pub = id.Public().(ed25519.PublicKey)
		}
		var out accountResult
		err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) error {
			a, err := c.Account(ctx, pub)
			out = accountResult{Account: hex.EncodeToString(pub), Balance: a.GetBalance()}
			return err
		})
		return out, err
	})
	cmd.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
	cmd.Flags().StringVar(&key, "key", "", "the account (an ed25519 public key in hex; default: <data>/client/identity.key's)")
	return cmd
}
