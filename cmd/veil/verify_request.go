package main

import (
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/protocol/federated"
)

func newVerifyRequestCmd(g *globalOptions) *cobra.Command {
	var (
		lf      ledgerFlags
		keyHex  string
		receipt int64
	)
	cmd := &cobra.Command{
		Use:   "verify-request",
		Short: "As a third party, check which committed model answered a request",
		Long: `Fetch a request's registration, receipt, challenge reveal, proof and
verdict from a ledger node and verify them here, each against a log head
vouched for by what you pin (--ledger-key: a single node's checkpoint key;
--ledger-genesis: more than 2/3 of a replicated chain's validators): the
model's verifying key is for its registered spec's circuit, the receipt is
signed by the registered server key and countersigned by the client, the
reveal opens the client's commitment, the Groth16 proof verifies for the
revealed challenges of every request it covers, and the verdict is the
client's.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if (receipt < 0) == (keyHex == "") {
			return nil, usageError("give either --receipt N (log index of the receipt) or --request-key HEX")
		}
		reader, lc, err := lf.reader(cmd.Context())
		if err != nil {
			return nil, err
		}
		defer lc.Close()
		var key []byte
		if receipt >= 0 {
			if key, err = protocol.RequestKeyAt(cmd.Context(), reader, uint64(receipt)); err != nil {
				return nil, err
			}
		} else if key, err = hex.DecodeString(keyHex); err != nil || len(key) != 32 {
			return nil, usageError("--request-key: want 64 hex digits")
		}
		pin, err := lf.Pin(g.store().SelfKey)
		if err != nil {
			return nil, err
		}
		v, err := federated.AuditRequest(cmd.Context(), reader, key, pin)
		if v == nil {
			return nil, err
		}
		if !v.Audit.OK() {
			return v, fmt.Errorf("request %x does not verify", v.Audit.RequestKey)
		}
		return v, err
	})
	lf.register(cmd.Flags())
	cmd.Flags().Int64Var(&receipt, "receipt", -1, "log index of the request's receipt")
	cmd.Flags().StringVar(&keyHex, "request-key", "", "the request's ledger key (64 hex digits, as veil infer --verify prints it)")
	return cmd
}
