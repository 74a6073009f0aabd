package query

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// Client is a remote ledger node as a ledger.API. Nothing it returns needs
// to be trusted: check checkpoints against the node's key with
// ledger.VerifyCheckpoint and entries with ledger.VerifyInclusion.
type Client struct {
	conn *grpc.ClientConn
	rpc  ledgerv1.LedgerServiceClient
}

var _ ledger.API = (*Client)(nil)

// Dial connects to a node's gRPC address (host:port). The connection is
// plaintext: the ledger's answers are signed, not secret; put TLS in front
// for anything beyond loopback or a trusted network.
func Dial(addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("connect to ledger %s: %w", addr, err)
	}
	return &Client{conn: conn, rpc: ledgerv1.NewLedgerServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func clientErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if status.Code(err) == codes.NotFound {
		return notFound(status.Convert(err).Message())
	}
	return fmt.Errorf("ledger %s: %w", what, err)
}

// Submit implements ledger.API.
func (c *Client) Submit(ctx context.Context, tx []byte) (*ledgerv1.SubmitResponse, error) {
	r, err := c.rpc.Submit(ctx, &ledgerv1.SubmitRequest{Tx: tx})
	if err != nil {
		return nil, clientErr("submit", err)
	}
	if r.Code != ledgerv1.Code_CODE_OK {
		return r, &ledger.Rejection{Code: r.Code, Reason: r.Reason}
	}
	return r, nil
}

// Checkpoint implements ledger.API.
func (c *Client) Checkpoint(ctx context.Context) (*ledgerv1.Checkpoint, error) {
	r, err := c.rpc.GetCheckpoint(ctx, &ledgerv1.GetCheckpointRequest{})
	return r, clientErr("checkpoint", err)
}

// Entry implements ledger.API.
func (c *Client) Entry(ctx context.Context, index uint64) (*ledgerv1.Entry, error) {
	r, err := c.rpc.GetEntry(ctx, &ledgerv1.GetEntryRequest{Index: index})
	return r, clientErr(fmt.Sprintf("entry %d", index), err)
}

// Consistency implements ledger.API.
func (c *Client) Consistency(ctx context.Context, from, to uint64) (*ledgerv1.ConsistencyProof, error) {
	r, err := c.rpc.GetConsistency(ctx, &ledgerv1.GetConsistencyRequest{FromSize: from, ToSize: to})
	return r, clientErr("consistency proof", err)
}

// Model implements ledger.API.
func (c *Client) Model(ctx context.Context, id string, withKey bool) (*ledgerv1.GetModelResponse, error) {
	r, err := c.rpc.GetModel(ctx, &ledgerv1.GetModelRequest{ModelId: id, WithVerifyingKey: withKey})
	return r, clientErr("model "+id, err)
}

// Models implements ledger.API.
func (c *Client) Models(ctx context.Context) ([]*ledgerv1.ModelRecord, error) {
	r, err := c.rpc.ListModels(ctx, &ledgerv1.ListModelsRequest{})
	return r.GetModels(), clientErr("models", err)
}

// Request implements ledger.API.
func (c *Client) Request(ctx context.Context, id string) (*ledgerv1.RequestRecord, error) {
	r, err := c.rpc.GetRequest(ctx, &ledgerv1.GetRequestRequest{RequestId: id})
	return r, clientErr("request "+id, err)
}

// Requests implements ledger.API.
func (c *Client) Requests(ctx context.Context, q *ledgerv1.ListRequestsRequest) ([]*ledgerv1.RequestRecord, error) {
	r, err := c.rpc.ListRequests(ctx, q)
	return r.GetRequests(), clientErr("requests", err)
}

// Setup implements ledger.API.
func (c *Client) Setup(ctx context.Context, id string, phase uint32) (*ledgerv1.SetupRecord, error) {
	r, err := c.rpc.GetSetup(ctx, &ledgerv1.GetSetupRequest{CeremonyId: id, Phase: phase})
	return r, clientErr("setup "+id, err)
}

// Rejections implements ledger.API.
func (c *Client) Rejections(ctx context.Context) ([]*ledgerv1.Rejected, error) {
	r, err := c.rpc.ListRejections(ctx, &ledgerv1.ListRejectionsRequest{})
	return r.GetRejections(), clientErr("rejections", err)
}

// notFound is the server's not-found message, matching ledger.ErrNotFound.
type notFound string

func (e notFound) Error() string { return string(e) }
func (e notFound) Unwrap() error { return ledger.ErrNotFound }
