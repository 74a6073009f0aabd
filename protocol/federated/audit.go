package federated

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/protocol"
)

// RequestAudit is what `veil verify-request` checks: the request
// (protocol.AuditRequest), and the federated training of the model that
// answered, when it has one.
type RequestAudit struct {
	Audit        *protocol.Audit `json:"audit"`
	Training     *Trace          `json:"training,omitempty"`
	TrainingNote string          `json:"training_note,omitempty"`
}

// AuditRequest audits the request with ledger key key and traces the
// model's training. The error is set, with the audit, when the training
// record does not verify; a failed request check is in Audit.OK.
func AuditRequest(ctx context.Context, r *trust.Reader, key []byte, pin protocol.Pin) (*RequestAudit, error) {
	a, err := protocol.AuditRequest(ctx, r, key, pin)
	if err != nil {
		return nil, err
	}
	v := &RequestAudit{Audit: a}
	switch tr, err := TraceModel(ctx, r, a.ModelID); {
	case errors.Is(err, ErrUntraced):
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

// WriteText prints every check, the verdict and the training trace.
func (v *RequestAudit) WriteText(w io.Writer) error {
	a := v.Audit
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
}
