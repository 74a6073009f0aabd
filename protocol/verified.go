package protocol

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/pixels"
)

// VerifiedOptions are the inputs of one verifiable classification by a
// client with its keys under DataDir (`veil infer --verify`).
type VerifiedOptions struct {
	Server, ServerTLSCA string
	ModelID             string
	DataDir             string
	Ledger              *trust.Reader
	Pin                 Pin
	Image               pixels.Image
	// Wait bounds the wait for the proof (default 5 minutes).
	Wait time.Duration
	// MaxPrice is the most the client pays per image (0: any); the
	// request pays the model's offer price, if it has one.
	MaxPrice uint64
	// Dispute, when the answer is rejected for differing challenge scores
	// and the request paid, proves the fraud to every node (market.go).
	Dispute bool
	// MaxRequestsPerKey bounds the requests of one session (a dispute
	// reveals the session's images).
	MaxRequestsPerKey int
}

// VerifiedResult is one verifiable classification, start to verdict.
type VerifiedResult struct {
	Class        int       `json:"class"`
	Guaranteed   bool      `json:"class_guaranteed"`
	Scores       []float64 `json:"scores"`
	RequestID    string    `json:"request_id"`
	RequestKey   string    `json:"request_key"`
	ReceiptIndex uint64    `json:"receipt_index"`
	RevealIndex  uint64    `json:"reveal_index"`
	ProofIndex   uint64    `json:"proof_index"`
	VerdictIndex uint64    `json:"verdict_index"`
	Accept       bool      `json:"accept"`
	Reason       string    `json:"reason"`
	Detail       string    `json:"detail"`
	MaxDiff      float64   `json:"max_abs_diff_units"`
	Tolerance    int64     `json:"tolerance_units"`
	LatencyMS    float64   `json:"latency_ms"`
	ProtocolMS   float64   `json:"protocol_overhead_ms"`
	// The market: what the request paid, its escrow afterwards (a hint from
	// the node), and the dispute when there was one.
	Price          uint64 `json:"price"`
	Escrow         string `json:"escrow,omitempty"`
	DisputeIndex   uint64 `json:"dispute_index,omitempty"`
	DisputeOutcome string `json:"dispute_outcome,omitempty"`
	// Label is the image's MNIST label, when the caller knows it.
	Label *int `json:"label,omitempty"`
}

// WriteText prints the class, the request's ledger entries and the verdict.
func (r *VerifiedResult) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "class %d", r.Class)
	if r.Label != nil {
		fmt.Fprintf(w, " (MNIST label %d)", *r.Label)
	}
	fmt.Fprintf(w, ", %.0f ms (protocol overhead %.2f ms); %s\n", r.LatencyMS, r.ProtocolMS,
		map[bool]string{true: "the committed model gives this class (margin over 2x tolerance)", false: "within the tolerance of another class: not guaranteed"}[r.Guaranteed])
	fmt.Fprintf(w, "request key %s: receipt #%d, reveal #%d, proof #%d, verdict #%d\n", r.RequestKey, r.ReceiptIndex, r.RevealIndex, r.ProofIndex, r.VerdictIndex)
	fmt.Fprintf(w, "verdict %s (%s): %s\n", map[bool]string{true: "ACCEPT", false: "REJECT"}[r.Accept], r.Reason, r.Detail)
	if r.Price > 0 {
		fmt.Fprintf(w, "paid %s VEIL into escrow: %s\n", ledger.FormatAmount(r.Price), r.Escrow)
	}
	if r.DisputeIndex > 0 {
		fmt.Fprintf(w, "dispute #%d: %s\n", r.DisputeIndex, r.DisputeOutcome)
	}
	return nil
}

// ClassifyVerified runs the whole protocol for one image: connect (the
// registration read through the pinned ledger), classify, reveal, settle.
// The client's ledger identity is <DataDir>/client/identity.key.
func ClassifyVerified(ctx context.Context, o VerifiedOptions) (*VerifiedResult, error) {
	if o.Wait == 0 {
		o.Wait = 5 * time.Minute
	}
	conn, err := client.Dial(o.Server, client.Options{TLSCA: o.ServerTLSCA})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	key, err := LoadOrCreateIdentity(filepath.Join(o.DataDir, "client", "identity.key"))
	if err != nil {
		return nil, err
	}
	pool, err := dataset.MNISTTrain()
	if err != nil {
		return nil, err
	}
	c, err := Connect(ctx, ConnectOptions{Conn: conn, Ledger: o.Ledger, ModelID: o.ModelID, DataDir: o.DataDir, Key: key, Pool: pool, Pin: o.Pin,
		MaxPrice: o.MaxPrice, MaxRequestsPerKey: o.MaxRequestsPerKey})
	if err != nil {
		return nil, err
	}
	req, err := c.Classify(ctx, o.Image)
	if errors.Is(err, ErrBadReceipt) {
		// Never reveal for a receipt that is not the exchange; once the
		// deadline has passed, record the rejection (if the receipt made
		// it to the ledger at all).
		wctx, cancel := context.WithTimeout(ctx, o.Wait)
		defer cancel()
		if idx, rerr := c.Reject(wctx, req, ledgerv1.VerdictReason_VERDICT_REASON_BAD_RECEIPT); rerr == nil {
			return nil, fmt.Errorf("%w (no challenge revealed; rejection recorded at entry %d)", err, idx)
		} else {
			return nil, fmt.Errorf("%w (no challenge revealed; no rejection recorded: %v)", err, rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	receipt, reveal, err := c.Reveal(ctx, req)
	if err != nil {
		return nil, err
	}
	out, err := c.Settle(ctx, req, o.Wait)
	if err != nil {
		return nil, err
	}
	res := &VerifiedResult{
		Class: req.Class, Guaranteed: req.Guaranteed, Scores: req.Scores, RequestID: req.ID, RequestKey: hex.EncodeToString(req.Key[:]),
		ReceiptIndex: receipt, RevealIndex: reveal, ProofIndex: out.ProofIndex, VerdictIndex: out.VerdictIndex,
		Accept: out.Accept, Reason: out.Reason.String(), Detail: out.Detail, MaxDiff: out.MaxDiff, Tolerance: out.Tolerance,
		ProtocolMS: req.ProtocolMS, LatencyMS: req.Result.EncryptMS + req.Result.RoundTripMS + req.Result.DecryptMS, Price: req.Price,
	}
	if req.Price > 0 && o.Dispute && out.Reason == ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER {
		d, err := c.Dispute(ctx, req, out)
		if err != nil {
			return res, fmt.Errorf("dispute: %w", err)
		}
		res.DisputeIndex, res.DisputeOutcome = d.Index, "fraud proven: "+d.Detail
	}
	if req.Price > 0 {
		if e, err := c.WaitEscrow(ctx, req, 2*time.Second); err == nil {
			res.Escrow = e.GetStatus().String()
		}
	}
	return res, nil
}
