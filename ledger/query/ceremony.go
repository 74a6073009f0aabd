package query

import (
	"context"
	"crypto/sha256"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// Setup ceremony queries (ledger/ceremony.go). A served API that is not a
// ledger.CeremonyAPI gets UNIMPLEMENTED.

var _ ledger.CeremonyAPI = (*Client)(nil)

func (s *GRPCServer) ceremonyAPI() (ledger.CeremonyAPI, error) {
	t, ok := s.API.(ledger.CeremonyAPI)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this ledger does not serve ceremonies")
	}
	return t, nil
}

func (s *GRPCServer) GetCeremony(ctx context.Context, r *ledgerv1.GetCeremonyRequest) (*ledgerv1.CeremonyRecord, error) {
	c, err := s.ceremonyAPI()
	if err != nil {
		return nil, err
	}
	rec, err := c.Ceremony(ctx, r.CeremonyId)
	return rec, grpcErr(err)
}

func (s *GRPCServer) GetChunk(ctx context.Context, r *ledgerv1.GetChunkRequest) (*ledgerv1.GetChunkResponse, error) {
	c, err := s.ceremonyAPI()
	if err != nil {
		return nil, err
	}
	b, err := c.Chunk(ctx, r.Hash)
	if err != nil {
		return nil, grpcErr(err)
	}
	return &ledgerv1.GetChunkResponse{Data: b}, nil
}

// Ceremony implements ledger.CeremonyAPI.
func (c *Client) Ceremony(ctx context.Context, id string) (*ledgerv1.CeremonyRecord, error) {
	r, err := c.rpc.GetCeremony(ctx, &ledgerv1.GetCeremonyRequest{CeremonyId: id})
	return r, clientErr("ceremony "+id, err)
}

// Chunk implements ledger.CeremonyAPI. A chunk is addressed by its hash,
// so the node cannot substitute one: a chunk that does not hash to what
// was asked is an error.
func (c *Client) Chunk(ctx context.Context, hash []byte) ([]byte, error) {
	r, err := c.rpc.GetChunk(ctx, &ledgerv1.GetChunkRequest{Hash: hash})
	if err != nil {
		return nil, clientErr(fmt.Sprintf("chunk %x", hash[:min(8, len(hash))]), err)
	}
	if h := sha256.Sum256(r.Data); string(h[:]) != string(hash) {
		return nil, fmt.Errorf("ledger chunk %x: the node sent bytes that hash to %x", hash[:min(8, len(hash))], h[:8])
	}
	return r.Data, nil
}
