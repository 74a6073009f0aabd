package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
)

// KeyChunkBytes is the size of the chunks a key bundle is streamed in.
const KeyChunkBytes = 1 << 20

// Options configure a connection.
type Options struct {
	// TLSCA is a PEM file of the CA that signed the server's certificate;
	// empty means plaintext (fine on loopback).
	TLSCA string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
}

// Conn is a connection to a Veil inference server.
type Conn struct {
	cc  *grpc.ClientConn
	api inferencev1.InferenceClient
	// Addr is the server address.
	Addr string
}

// Dial connects to addr (host:port). The connection is made lazily by gRPC;
// the first RPC reports an unreachable server.
func Dial(addr string, opts Options) (*Conn, error) {
	creds := insecure.NewCredentials()
	if opts.TLSCA != "" {
		pem, err := os.ReadFile(opts.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA %s: no PEM certificate", opts.TLSCA)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: opts.ServerName, MinVersion: tls.VersionTLS12})
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &Conn{cc: cc, api: inferencev1.NewInferenceClient(cc), Addr: addr}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.cc.Close() }

// GRPC returns the underlying connection (for other services on the same
// server, e.g. the ledger).
func (c *Conn) GRPC() *grpc.ClientConn { return c.cc }

// ListModels lists the served models.
func (c *Conn) ListModels(ctx context.Context) ([]*inferencev1.ModelInfo, error) {
	r, err := c.api.ListModels(ctx, &inferencev1.ListModelsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	return r.GetModels(), nil
}

// GetModel describes one model.
func (c *Conn) GetModel(ctx context.Context, id string) (*inferencev1.ModelInfo, error) {
	m, err := c.api.GetModel(ctx, &inferencev1.GetModelRequest{ModelId: id})
	if err != nil {
		return nil, fmt.Errorf("get model %q: %w", id, err)
	}
	return m, nil
}

// OpenSession streams a key bundle and returns the new session's id.
func (c *Conn) OpenSession(ctx context.Context, modelID string, bundle []byte) (*inferencev1.OpenSessionResponse, error) {
	if len(bundle) == 0 {
		return nil, errors.New("open session: empty key bundle")
	}
	stream, err := c.api.OpenSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	if err := stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Header{
		Header: &inferencev1.SessionHeader{ModelId: modelID, TotalBytes: uint64(len(bundle))},
	}}); err != nil {
		return nil, fmt.Errorf("open session: %w", closeAndRecv(stream, err))
	}
	for off := 0; off < len(bundle); off += KeyChunkBytes {
		end := min(len(bundle), off+KeyChunkBytes)
		if err := stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Keys{Keys: bundle[off:end]}}); err != nil {
			return nil, fmt.Errorf("open session: %w", closeAndRecv(stream, err))
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, fmt.Errorf("open session: %w", err)
	}
	return resp, nil
}

// closeAndRecv turns a Send error (io.EOF when the server already failed the
// stream) into the server's status.
func closeAndRecv(stream grpc.ClientStreamingClient[inferencev1.OpenSessionChunk, inferencev1.OpenSessionResponse], sendErr error) error {
	if _, err := stream.CloseAndRecv(); err != nil {
		return err
	}
	return sendErr
}

// SessionAlive reports whether the server still holds a session.
func (c *Conn) SessionAlive(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	_, err := c.api.GetSession(ctx, &inferencev1.GetSessionRequest{SessionId: id})
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("get session: %w", err)
}

// CloseSession asks the server to forget a session.
func (c *Conn) CloseSession(ctx context.Context, id string) error {
	if _, err := c.api.CloseSession(ctx, &inferencev1.CloseSessionRequest{SessionId: id}); err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	return nil
}

// Infer sends one ciphertext.
func (c *Conn) Infer(ctx context.Context, sessionID string, ciphertext []byte) (*inferencev1.InferResponse, error) {
	return c.InferRequest(ctx, &inferencev1.InferRequest{SessionId: sessionID, Ciphertext: ciphertext})
}

// InferRequest sends a full request (with protocol fields).
func (c *Conn) InferRequest(ctx context.Context, req *inferencev1.InferRequest) (*inferencev1.InferResponse, error) {
	r, err := c.api.Infer(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("infer: %w", err)
	}
	return r, nil
}
