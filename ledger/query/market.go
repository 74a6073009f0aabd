package query

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// The market's queries (ledger.MarketAPI): served by every Store-based node
// over gRPC and JSON, and implemented by the remote Client.

func (s *GRPCServer) marketAPI() (ledger.MarketAPI, error) {
	api, ok := s.API.(ledger.MarketAPI)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this ledger serves no market")
	}
	return api, nil
}

func (s *GRPCServer) GetAccount(ctx context.Context, r *ledgerv1.GetAccountRequest) (*ledgerv1.AccountRecord, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	a, err := api.Account(ctx, r.Account)
	return a, grpcErr(err)
}

func (s *GRPCServer) ListAccounts(ctx context.Context, r *ledgerv1.ListAccountsRequest) (*ledgerv1.ListAccountsResponse, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	as, err := api.Accounts(ctx, int(r.Limit), r.After)
	return &ledgerv1.ListAccountsResponse{Accounts: as}, grpcErr(err)
}

func (s *GRPCServer) GetOffer(ctx context.Context, r *ledgerv1.GetOfferRequest) (*ledgerv1.OfferRecord, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	o, err := api.Offer(ctx, r.ModelId)
	return o, grpcErr(err)
}

func (s *GRPCServer) ListOffers(ctx context.Context, _ *ledgerv1.ListOffersRequest) (*ledgerv1.ListOffersResponse, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	os, err := api.Offers(ctx)
	return &ledgerv1.ListOffersResponse{Offers: os}, grpcErr(err)
}

func (s *GRPCServer) GetEscrow(ctx context.Context, r *ledgerv1.GetEscrowRequest) (*ledgerv1.EscrowRecord, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	e, err := api.Escrow(ctx, r.RequestKey)
	return e, grpcErr(err)
}

func (s *GRPCServer) ListEscrows(ctx context.Context, r *ledgerv1.ListEscrowsRequest) (*ledgerv1.ListEscrowsResponse, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	es, err := api.Escrows(ctx, int(r.Limit))
	return &ledgerv1.ListEscrowsResponse{Escrows: es}, grpcErr(err)
}

func (s *GRPCServer) ListDisputes(ctx context.Context, r *ledgerv1.ListDisputesRequest) (*ledgerv1.ListDisputesResponse, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	ds, err := api.Disputes(ctx, int(r.Limit))
	return &ledgerv1.ListDisputesResponse{Disputes: ds}, grpcErr(err)
}

func (s *GRPCServer) GetSupply(ctx context.Context, _ *ledgerv1.GetSupplyRequest) (*ledgerv1.SupplyRecord, error) {
	api, err := s.marketAPI()
	if err != nil {
		return nil, err
	}
	r, err := api.Supply(ctx)
	return r, grpcErr(err)
}

var _ ledger.MarketAPI = (*Client)(nil)

// Account implements ledger.MarketAPI.
func (c *Client) Account(ctx context.Context, key []byte) (*ledgerv1.AccountRecord, error) {
	r, err := c.rpc.GetAccount(ctx, &ledgerv1.GetAccountRequest{Account: key})
	return r, clientErr(fmt.Sprintf("account %x", key), err)
}

// Accounts implements ledger.MarketAPI.
func (c *Client) Accounts(ctx context.Context, limit int, after []byte) ([]*ledgerv1.AccountRecord, error) {
	r, err := c.rpc.ListAccounts(ctx, &ledgerv1.ListAccountsRequest{Limit: uint32(max(0, limit)), After: after})
	return r.GetAccounts(), clientErr("accounts", err)
}

// Offer implements ledger.MarketAPI.
func (c *Client) Offer(ctx context.Context, modelID string) (*ledgerv1.OfferRecord, error) {
	r, err := c.rpc.GetOffer(ctx, &ledgerv1.GetOfferRequest{ModelId: modelID})
	return r, clientErr("offer of "+modelID, err)
}

// Offers implements ledger.MarketAPI.
func (c *Client) Offers(ctx context.Context) ([]*ledgerv1.OfferRecord, error) {
	r, err := c.rpc.ListOffers(ctx, &ledgerv1.ListOffersRequest{})
	return r.GetOffers(), clientErr("offers", err)
}

// Escrow implements ledger.MarketAPI.
func (c *Client) Escrow(ctx context.Context, key []byte) (*ledgerv1.EscrowRecord, error) {
	r, err := c.rpc.GetEscrow(ctx, &ledgerv1.GetEscrowRequest{RequestKey: key})
	return r, clientErr(fmt.Sprintf("escrow %x", key), err)
}

// Escrows implements ledger.MarketAPI.
func (c *Client) Escrows(ctx context.Context, limit int) ([]*ledgerv1.EscrowRecord, error) {
	r, err := c.rpc.ListEscrows(ctx, &ledgerv1.ListEscrowsRequest{Limit: uint32(max(0, limit))})
	return r.GetEscrows(), clientErr("escrows", err)
}

// Disputes implements ledger.MarketAPI.
func (c *Client) Disputes(ctx context.Context, limit int) ([]*ledgerv1.DisputeRecord, error) {
	r, err := c.rpc.ListDisputes(ctx, &ledgerv1.ListDisputesRequest{Limit: uint32(max(0, limit))})
	return r.GetDisputes(), clientErr("disputes", err)
}

// Supply implements ledger.MarketAPI.
func (c *Client) Supply(ctx context.Context) (*ledgerv1.SupplyRecord, error) {
	r, err := c.rpc.GetSupply(ctx, &ledgerv1.GetSupplyRequest{})
	return r, clientErr("supply", err)
}

// marketRoutes adds the market's JSON API:
//
//	GET /api/v1/accounts[?limit=&after=]   GET /api/v1/accounts/{key}
//	GET /api/v1/offers                     GET /api/v1/offers/{model}
//	GET /api/v1/escrows[?limit=]           GET /api/v1/escrows/{key}
//	GET /api/v1/disputes[?limit=]          GET /api/v1/supply
func marketRoutes(mux *http.ServeMux, h *httpHandler) {
	market := func(f func(api ledger.MarketAPI, r *http.Request) (proto.Message, error)) http.HandlerFunc {
		return h.jsonOf(func(r *http.Request) (proto.Message, error) {
			api, ok := h.api.(ledger.MarketAPI)
			if !ok {
				return nil, fmt.Errorf("this ledger serves no market: %w", ledger.ErrNotFound)
			}
			return f(api, r)
		})
	}
	hexKey := func(r *http.Request) ([]byte, error) {
		k, err := hex.DecodeString(r.PathValue("key"))
		if err != nil || len(k) != 32 {
			return nil, badRequest("a key is 64 hex digits")
		}
		return k, nil
	}
	limit := func(r *http.Request) (int, error) {
		n, err := strconv.ParseUint(r.FormValue("limit"), 10, 16)
		if r.FormValue("limit") == "" {
			return 0, nil
		}
		if err != nil || n > 1000 {
			return 0, badRequest("limit must be a number up to 1000")
		}
		return int(n), nil
	}
	mux.HandleFunc("GET /api/v1/accounts", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		n, err := limit(r)
		if err != nil {
			return nil, err
		}
		var after []byte
		if a := r.FormValue("after"); a != "" {
			if after, err = hex.DecodeString(a); err != nil {
				return nil, badRequest("after must be hex")
			}
		}
		as, err := api.Accounts(r.Context(), n, after)
		return &ledgerv1.ListAccountsResponse{Accounts: as}, err
	}))
	mux.HandleFunc("GET /api/v1/accounts/{key}", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		k, err := hexKey(r)
		if err != nil {
			return nil, err
		}
		return api.Account(r.Context(), k)
	}))
	mux.HandleFunc("GET /api/v1/offers", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		os, err := api.Offers(r.Context())
		return &ledgerv1.ListOffersResponse{Offers: os}, err
	}))
	mux.HandleFunc("GET /api/v1/offers/{model}", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		return api.Offer(r.Context(), r.PathValue("model"))
	}))
	mux.HandleFunc("GET /api/v1/escrows", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		n, err := limit(r)
		if err != nil {
			return nil, err
		}
		es, err := api.Escrows(r.Context(), n)
		return &ledgerv1.ListEscrowsResponse{Escrows: es}, err
	}))
	mux.HandleFunc("GET /api/v1/escrows/{key}", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		k, err := hexKey(r)
		if err != nil {
			return nil, err
		}
		return api.Escrow(r.Context(), k)
	}))
	mux.HandleFunc("GET /api/v1/disputes", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		n, err := limit(r)
		if err != nil {
			return nil, err
		}
		ds, err := api.Disputes(r.Context(), n)
		return &ledgerv1.ListDisputesResponse{Disputes: ds}, err
	}))
	mux.HandleFunc("GET /api/v1/supply", market(func(api ledger.MarketAPI, r *http.Request) (proto.Message, error) {
		return api.Supply(r.Context())
	}))
}

// marketView is what the web page shows of the market.
type marketView struct {
	Supply   *ledgerv1.SupplyRecord
	Accounts []*ledgerv1.AccountRecord
	Offers   []*ledgerv1.OfferRecord
	Escrows  []*ledgerv1.EscrowRecord
	Disputes []*ledgerv1.DisputeRecord
}

func marketOf(ctx context.Context, api ledger.API) (*marketView, error) {
	m, ok := api.(ledger.MarketAPI)
	if !ok {
		return nil, nil
	}
	v := &marketView{}
	var err error
	if v.Supply, err = m.Supply(ctx); err != nil {
		return nil, err
	}
	if v.Accounts, err = m.Accounts(ctx, 50, nil); err != nil {
		return nil, err
	}
	if v.Offers, err = m.Offers(ctx); err != nil {
		return nil, err
	}
	if v.Escrows, err = m.Escrows(ctx, 50); err != nil {
		return nil, err
	}
	if v.Disputes, err = m.Disputes(ctx, 20); err != nil {
		return nil, err
	}
	return v, nil
}

// amount formats an amount of the chain's smallest unit as VEIL.
func amount(v uint64) string {
	return fmt.Sprintf("%d.%06d", v/ledger.Unit, v%ledger.Unit)
}

func escrowText(e *ledgerv1.EscrowRecord) string {
	switch e.Status {
	case ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED:
		return "locked: awaiting the proof"
	case ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN:
		return fmt.Sprintf("proven: disputable until height %d", e.DueHeight-1)
	case ledgerv1.EscrowStatus_ESCROW_STATUS_PAID:
		return "paid to the provider"
	case ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED:
		return "refunded: no proof by the deadline"
	case ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD:
		return "refunded: fraud proven"
	}
	return "unknown"
}

func outcomeText(d *ledgerv1.DisputeRecord) string {
	if d.Outcome == ledgerv1.Code_CODE_OK {
		return "fraud proven"
	}
	return "failed: " + d.Outcome.String()
}
