package protocol

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/heverify"
)

// The market's side of the roles (docs/market.md): a provider offers its
// model at a price with stake; a client pays the offer's price through its
// signed request (the receipt locks it in escrow) and, when the decrypted
// challenge scores differ from the proven ones, proves the fraud to every
// node with a dispute.

// OfferOptions are a provider's offer for a model.
type OfferOptions struct {
	Endpoint string // where clients reach the inference server
	Price    uint64 // per image (one per request)
	// Stake is the bonded stake the offer should hold: Deploy bonds the
	// difference from what the offer holds already.
	Stake          uint64
	UnbondingDelay uint64 // blocks; at least the chain's minimum
}

// PublishOffer makes the ledger's offer of modelID say o (signed by the
// model's server key): it bonds what the stake lacks and updates the
// endpoint, price and delay. It submits nothing when the offer already
// says all of it.
func PublishOffer(ctx context.Context, api ledger.API, server ledger.Signer, modelID string, o OfferOptions) (*ledgerv1.OfferRecord, error) {
	market, ok := api.(ledger.MarketAPI)
	if !ok {
		return nil, errors.New("publish offer: the ledger serves no market")
	}
	cur, err := market.Offer(ctx, modelID)
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("publish offer: %w", err)
	}
	var bond uint64
	if o.Stake > cur.GetBonded() {
		bond = o.Stake - cur.GetBonded()
	}
	if cur != nil && bond == 0 && cur.GetPrice() == o.Price && cur.GetEndpoint() == o.Endpoint && cur.GetUnbondingDelayBlocks() == o.UnbondingDelay {
		return cur, nil
	}
	tx, err := server.Offer(&ledgerv1.ProviderOffer{ModelId: modelID, Endpoint: o.Endpoint, Price: o.Price, Bond: bond, UnbondingDelayBlocks: o.UnbondingDelay})
	if err != nil {
		return nil, err
	}
	if _, err := submitOnce(ctx, api, tx); err != nil {
		return nil, fmt.Errorf("publish offer of %s: %w", modelID, err)
	}
	return market.Offer(ctx, modelID)
}

// checkPrice is the Recorder's part of the market: a request must agree to
// pay exactly the model's offer price (or nothing, for a model without an
// offer: the ledger refuses other receipts), and a client whose balance
// does not cover the price is refused before the evaluation (a hint from
// the server's ledger node: the ledger's own check comes with the receipt).
func (r *Recorder) checkPrice(ctx context.Context, modelID string, clientKey []byte, price uint64) error {
	want := r.Prices[modelID]
	if price != want {
		return fmt.Errorf("the request agrees to pay %d, the offer of %s asks %d", price, modelID, want)
	}
	if price == 0 {
		return nil
	}
	market, ok := r.Ledger.(ledger.MarketAPI)
	if !ok {
		return nil
	}
	a, err := market.Account(ctx, clientKey)
	if err != nil {
		return fmt.Errorf("the client's balance: %w", err)
	}
	if a.GetBalance() < price {
		return fmt.Errorf("the client's balance (%d) does not cover the price (%d)", a.GetBalance(), price)
	}
	return nil
}

// priceFor reads the model's offer price, if the ledger has a market and
// the model an offer, and refuses one above max (0: no bound).
func priceFor(ctx context.Context, api ledger.API, modelID string, max uint64) (uint64, error) {
	market, ok := api.(ledger.MarketAPI)
	if !ok {
		return 0, nil
	}
	o, err := market.Offer(ctx, modelID)
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("offer of %s: %w", modelID, err)
	}
	if max != 0 && o.GetPrice() > max {
		return 0, fmt.Errorf("the offer of %s asks %d per image, more than the %d this client pays", modelID, o.GetPrice(), max)
	}
	return o.GetPrice(), nil
}

// ErrNoFraud is returned by Dispute when the client's own check of the
// evidence, the one every node will run, does not prove fraud: submitting
// would only cost the dispute bond.
var ErrNoFraud = errors.New("the evidence does not prove fraud")

// DisputeResult is a dispute that was recorded.
type DisputeResult struct {
	Index   uint64        // log index of the Dispute transaction
	Outcome ledgerv1.Code // CODE_OK: fraud proven
	Detail  string
	Escrow  *ledgerv1.EscrowRecord // after the dispute (a hint from the node)
}

// DisputeBody is the dispute of req and the evidence every node will check
// (the same DisputeEvidence the ledger assembles from its state): the
// session's seed, parameters and Galois elements, the two ciphertexts, and
// the challenges, positions and proven rows of out (from Settle).
func (c *Client) DisputeBody(req *Request, out *Outcome) (*ledgerv1.Dispute, *ledger.DisputeEvidence, error) {
	if req.Result == nil || out == nil || len(out.Proven) != len(req.Challenges) {
		return nil, nil, errors.New("dispute: the request has no verified proof to dispute")
	}
	lit, err := req.Parameters.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	d := &ledgerv1.Dispute{
		ModelId: c.Registration.ModelID, RequestId: req.ID, SessionSeed: append([]byte(nil), req.Seed[:]...), CkksParameters: lit,
		GaloisElements: req.GaloisElements, InputCiphertext: req.Result.Input, OutputCiphertext: req.Result.Output,
	}
	spec := c.Registration.Spec
	e := &ledger.DisputeEvidence{
		Spec: spec.Canonical(), KeysDigest: append([]byte(nil), req.KeysDigest[:]...), Seed: d.SessionSeed, Parameters: lit, GaloisElements: d.GaloisElements,
		Input: d.InputCiphertext, Output: d.OutputCiphertext, NumBlocks: c.blocks(), Positions: req.Positions, Proven: out.Proven,
		OutputFrac: spec.OutputFrac(), Tolerance: spec.Tolerance,
	}
	for i := range req.Challenges {
		e.Challenges = append(e.Challenges, req.Challenges[i][:])
	}
	return d, e, nil
}

// Dispute proves to every node that the provider's answer to req was not
// the committed model's on a challenge block: it runs the nodes' own check
// (heverify) on the evidence first and submits only what proves fraud
// (else ErrNoFraud, wrapped with the outcome), then returns the recorded
// outcome. The dispute reveals the session's seed, so every image of the
// session becomes readable to whoever holds its ciphertexts (the server):
// clients that may dispute keep sessions short (ConnectOptions.
// MaxRequestsPerKey).
func (c *Client) Dispute(ctx context.Context, req *Request, out *Outcome) (*DisputeResult, error) {
	body, ev, err := c.DisputeBody(req, out)
	if err != nil {
		return nil, err
	}
	code, detail := heverify.New().CheckDispute(ev)
	if code != ledgerv1.Code_CODE_OK {
		return nil, fmt.Errorf("%w: %s: %s", ErrNoFraud, code, detail)
	}
	tx, err := c.signer().Dispute(body)
	if err != nil {
		return nil, err
	}
	idx, err := submitOnce(ctx, c.Ledger.API, tx)
	if err != nil {
		return nil, fmt.Errorf("dispute: %w", err)
	}
	res := &DisputeResult{Index: idx, Outcome: code, Detail: detail}
	if m, ok := c.Ledger.API.(ledger.MarketAPI); ok {
		res.Escrow, _ = m.Escrow(ctx, req.Key[:])
	}
	return res, nil
}

// Balance returns the client's balance (a hint from the node it reads).
func (c *Client) Balance(ctx context.Context) (uint64, error) {
	return BalanceOf(ctx, c.Ledger.API, c.Key.Public().(ed25519.PublicKey))
}

// BalanceOf returns an account's balance as a ledger node reports it.
func BalanceOf(ctx context.Context, api ledger.API, key ed25519.PublicKey) (uint64, error) {
	m, ok := api.(ledger.MarketAPI)
	if !ok {
		return 0, errors.New("the ledger serves no market")
	}
	a, err := m.Account(ctx, key)
	return a.GetBalance(), err
}

// Fund transfers amount from a funded key to another account and waits
// for it to commit (a faucet for demos and tests).
func Fund(ctx context.Context, api ledger.API, chainID string, from ed25519.PrivateKey, to ed25519.PublicKey, amount uint64) error {
	tx, err := ledger.Signer{ChainID: chainID, Key: from}.Transfer(&ledgerv1.Transfer{To: to, Amount: amount})
	if err != nil {
		return err
	}
	if _, err := submitOnce(ctx, api, tx); err != nil {
		return fmt.Errorf("fund %x: %w", to[:8], err)
	}
	return nil
}

// WaitEscrow waits (at most timeout) until the request's escrow is settled
// (paid or refunded) and returns it.
func (c *Client) WaitEscrow(ctx context.Context, req *Request, timeout time.Duration) (*ledgerv1.EscrowRecord, error) {
	m, ok := c.Ledger.API.(ledger.MarketAPI)
	if !ok {
		return nil, errors.New("the ledger serves no market")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		e, err := m.Escrow(ctx, req.Key[:])
		if err == nil && e.GetStatus() >= ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
			return e, nil
		}
		if err != nil && !errors.Is(err, ledger.ErrNotFound) && ctx.Err() == nil {
			return nil, err
		}
		if err := sleep(ctx, c.poll()); err != nil {
			return e, fmt.Errorf("waiting for the escrow of %x: %w", req.Key[:8], err)
		}
	}
}
