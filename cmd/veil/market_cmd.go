package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
)

// parseFunds reads --fund KEY=AMOUNT flags into genesis allocations.
func parseFunds(fs []string) ([]ledger.Allocation, error) {
	a, err := ledger.ParseAllocations(fs)
	if err != nil {
		return nil, usageError("--fund %v", err)
	}
	return a, nil
}

// parseKey reads an ed25519 public key written in hex; what names the flag
// in the usage error.
func parseKey(s, what string) (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(s)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, usageError("%s: want 64 hex digits (an ed25519 public key)", what)
	}
	return k, nil
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
		var out query.OfferTable
		err := queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
			out, err = c.Offers(ctx)
			return err
		})
		return out, err
	})
	cmd.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
	return cmd
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
		var err error
		if key != "" {
			pub, err = parseKey(key, "--key")
		} else {
			pub, err = g.store().SelfKey()
		}
		if err != nil {
			return nil, err
		}
		var out query.Balance
		err = queryLedger(cmd.Context(), addr, func(ctx context.Context, c *query.Client) (err error) {
			out, err = query.AccountBalance(ctx, c, pub)
			return err
		})
		return out, err
	})
	cmd.Flags().StringVar(&addr, "ledger", "", "gRPC address of a ledger node")
	cmd.Flags().StringVar(&key, "key", "", "the account (an ed25519 public key in hex; default: <data>/client/identity.key's)")
	return cmd
}
