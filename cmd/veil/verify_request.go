package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/ledger"
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
		v, err := auditRequest(cmd.Context(), lf, g.selfKey, receipt, keyHex)
		if v == nil {
			return nil, err
		}
		a := v.Audit
		res := textFunc{v, func(w io.Writer) error {
			fmt.Fprintf(w, "request %s (key %x), model %s, receipt #%d\n", a.RequestID, a.RequestKey, a.ModelID, a.ReceiptIndex)
			for _, c := range a.Checks {
				fmt.Fprintf(w, "  %s %s: %s\n", map[bool]string{true: "ok  ", false: "FAIL"}[c.OK], c.What, c.Info)
			}
			if a.OK() && a.HasVerdict && !a.Accepted {
				fmt.Fprintf(w, "all records verify, and the client's verdict is: REJECT (%s)\n", a.Reason)
			}
			if v.Training == nil {
				_, err := fmt.Fprintf(w, "training: %s\n", v.TrainingNote)
				return err
			}
			fmt.Fprintln(w, "training of the model that answered, traced on the ledger:")
			return v.Training.WriteText(w)
		}}
		if !a.OK() {
			return res, fmt.Errorf("request %x does not verify", a.RequestKey)
		}
		return res, err
	})
	lf.register(cmd.Flags())
	cmd.Flags().Int64Var(&receipt, "receipt", -1, "log index of the request's receipt")
	cmd.Flags().StringVar(&keyHex, "request-key", "", "the request's ledger key (64 hex digits, as veil infer --verify prints it)")
	return cmd
}

// requestAudit is what verify-request checked: the request, and the
// federated training of the model that answered, when it has one.
type requestAudit struct {
	Audit        *protocol.Audit  `json:"audit"`
	Training     *federated.Trace `json:"training,omitempty"`
	TrainingNote string           `json:"training_note,omitempty"`
}

// auditRequest audits the request named by its receipt's log index
// (receipt >= 0) or its ledger key (hex), and traces the model's training.
func auditRequest(ctx context.Context, lf ledgerFlags, self func() (ed25519.PublicKey, error), receipt int64, keyHex string) (*requestAudit, error) {
	reader, lc, err := lf.reader(ctx)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	var key []byte
	if receipt >= 0 {
		head, err := reader.Head(ctx)
		if err != nil {
			return nil, err
		}
		tx, err := reader.Entry(ctx, head, uint64(receipt))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", receipt, err)
		}
		rc := tx.Body.GetInferenceReceipt()
		if rc == nil {
			return nil, fmt.Errorf("entry %d is not an inference receipt", receipt)
		}
		k := ledger.RequestKey(rc.GetModelId(), rc.GetClientKey(), rc.GetRequestId())
		key = k[:]
	} else if key, err = hex.DecodeString(keyHex); err != nil || len(key) != 32 {
		return nil, usageError("--request-key: want 64 hex digits")
	}
	pin, err := lf.pin(self)
	if err != nil {
		return nil, err
	}
	a, err := protocol.AuditRequest(ctx, reader, key, pin)
	if err != nil {
		return nil, err
	}
	v := &requestAudit{Audit: a}
	switch tr, err := federated.TraceModel(ctx, reader, a.ModelID); {
	case errors.Is(err, federated.ErrUntraced):
		v.TrainingNote = "the model has no federated-training record on this ledger"
	case err != nil:
		v.TrainingNote = "not traced: " + err.Error()
	default:
		v.Training = tr
		if !tr.OK() {
			return v, fmt.Errorf("the model's training record does not verify")
		}
	}
	return v, nil
}
