package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/ledger/query"
)

func newVerifyRequestCmd(g *globalOptions) *cobra.Command {
	var (
		addr, requestID, nodeKey string
		receipt                  int64
		asJSON                   bool
	)
	cmd := &cobra.Command{
		Use:   "verify-request",
		Short: "As a third party, check which committed model answered a request",
		Long: `Fetch a request's receipt, challenge reveal, proof and verdict from a ledger
node, with their Merkle inclusion proofs, and verify them here: the entries
are in the log under a checkpoint signed by the node key, the receipt is
signed by the model's registered server key and countersigned by the
client, the reveal opens the client's commitment, the Groth16 proof
verifies against the registered verifying key and commitment for the
revealed challenges, and the verdict is the client's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (receipt < 0) == (requestID == "") {
				return usageError("give either --receipt N (log index of the receipt) or --request ID")
			}
			var key []byte
			if nodeKey != "" {
				k, err := hex.DecodeString(nodeKey)
				if err != nil || len(k) != 32 {
					return usageError("--node-key: want 64 hex digits (an ed25519 public key)")
				}
				key = k
			}
			ctx := cmd.Context()
			api, err := query.Dial(addr)
			if err != nil {
				return err
			}
			defer api.Close()
			if receipt >= 0 {
				e, err := api.Entry(ctx, uint64(receipt))
				if err != nil {
					return fmt.Errorf("entry %d: %w", receipt, err)
				}
				var stx ledgerv1.SignedTx
				var body ledgerv1.TxBody
				if proto.Unmarshal(e.GetTx(), &stx) != nil || proto.Unmarshal(stx.GetBody(), &body) != nil || body.GetInferenceReceipt() == nil {
					return fmt.Errorf("entry %d is not an inference receipt", receipt)
				}
				requestID = body.GetInferenceReceipt().GetRequestId()
			}
			a, err := client.AuditRequest(ctx, api, requestID, key)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(a); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "request %s, model %s, receipt #%d\n", a.RequestID, a.ModelID, a.ReceiptIndex)
				for _, c := range a.Checks {
					mark := "ok  "
					if !c.OK {
						mark = "FAIL"
					}
					fmt.Fprintf(w, "  %s %s: %s\n", mark, c.What, c.Info)
				}
				if a.Checkpoint != nil {
					fmt.Fprintf(w, "checkpoint: %d entries, root %x, signed by %x\n", a.Checkpoint.GetSize(), a.Checkpoint.GetRootHash(), a.CheckpointKey)
					if key == nil {
						fmt.Fprintln(w, "(no --node-key given: compare that key with one you trust)")
					}
				}
			}
			if !a.OK() {
				return fmt.Errorf("request %s does not verify", requestID)
			}
			if a.HasVerdict && !a.Accepted {
				fmt.Fprintln(w, "all records verify, and the client's verdict is: REJECT")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "ledger", "127.0.0.1:7443", "ledger node gRPC address (veil serve --verifiable or veil ledger serve)")
	cmd.Flags().Int64Var(&receipt, "receipt", -1, "log index of the request's receipt")
	cmd.Flags().StringVar(&requestID, "request", "", "request id")
	cmd.Flags().StringVar(&nodeKey, "node-key", "", "ed25519 key (hex) that must have signed the checkpoint")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
