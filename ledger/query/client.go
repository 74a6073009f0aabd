package query

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
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

// DialOptions configure a connection to a ledger node.
type DialOptions struct {
	// TLSCA is a PEM file of the CA that signed the node's certificate;
	// empty means plaintext. The ledger's answers are signed, not secret,
	// but a client's reveals and verdicts travel on this connection too.
	TLSCA string
	// ServerName overrides the name checked in the node's certificate.
	ServerName string
}

// Dial connects to a node's gRPC address (host:port) in plaintext.
func Dial(addr string) (*Client, error) { return DialWith(addr, DialOptions{}) }

// DialWith connects to a node's gRPC address with options.
func DialWith(addr string, o DialOptions) (*Client, error) {
	creds := insecure.NewCredentials()
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("connect to ledger %s: read CA: %w", addr, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("connect to ledger %s: %s holds no PEM certificate", addr, o.TLSCA)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: o.ServerName, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
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
		return r, &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
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

// EntryAt implements ledger.API.
func (c *Client) EntryAt(ctx context.Context, index, treeSize uint64) (*ledgerv1.Entry, error) {
	r, err := c.rpc.GetEntry(ctx, &ledgerv1.GetEntryRequest{Index: index, TreeSize: treeSize})
	return r, clientErr(fmt.Sprintf("entry %d in tree %d", index, treeSize), err)
}

// ChainInfo implements ledger.API.
func (c *Client) ChainInfo(ctx context.Context) (*ledgerv1.ChainInfo, error) {
	r, err := c.rpc.GetChainInfo(ctx, &ledgerv1.GetChainInfoRequest{})
	return r, clientErr("chain info", err)
}

// QuorumCheckpoint returns the node's latest quorum-signed log head
// (replicated ledgers only). Check it with ledger.VerifyQuorumCheckpoint.
func (c *Client) QuorumCheckpoint(ctx context.Context) (*ledgerv1.QuorumCheckpoint, error) {
	r, err := c.rpc.GetQuorumCheckpoint(ctx, &ledgerv1.GetQuorumCheckpointRequest{})
	return r, clientErr("quorum checkpoint", err)
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
func (c *Client) Request(ctx context.Context, key []byte) (*ledgerv1.RequestRecord, error) {
	r, err := c.rpc.GetRequest(ctx, &ledgerv1.GetRequestRequest{RequestKey: key})
	return r, clientErr(fmt.Sprintf("request %x", key), err)
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
