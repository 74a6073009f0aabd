package query

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// GRPCServer adapts a ledger.API to the generated service interface.
type GRPCServer struct {
	ledgerv1.UnimplementedLedgerServiceServer
	API ledger.API
}

func grpcErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ledger.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// Submit returns rejections in the response (code and reason), not as an
// RPC error: a rejection is an answer, not a failure.
func (s *GRPCServer) Submit(ctx context.Context, r *ledgerv1.SubmitRequest) (*ledgerv1.SubmitResponse, error) {
	resp, err := s.API.Submit(ctx, r.Tx)
	var rj *ledger.Rejection
	if errors.As(err, &rj) {
		if resp == nil {
			h := ledger.TxHash(r.Tx)
			resp = &ledgerv1.SubmitResponse{Code: rj.Code, Reason: rj.Reason, TxHash: h[:]}
		}
		return resp, nil
	}
	return resp, grpcErr(err)
}

func (s *GRPCServer) GetCheckpoint(ctx context.Context, _ *ledgerv1.GetCheckpointRequest) (*ledgerv1.Checkpoint, error) {
	cp, err := s.API.Checkpoint(ctx)
	return cp, grpcErr(err)
}

func (s *GRPCServer) GetEntry(ctx context.Context, r *ledgerv1.GetEntryRequest) (*ledgerv1.Entry, error) {
	if r.TreeSize != 0 {
		e, err := s.API.EntryAt(ctx, r.Index, r.TreeSize)
		return e, grpcErr(err)
	}
	e, err := s.API.Entry(ctx, r.Index)
	return e, grpcErr(err)
}

func (s *GRPCServer) GetChainInfo(ctx context.Context, _ *ledgerv1.GetChainInfoRequest) (*ledgerv1.ChainInfo, error) {
	ci, err := s.API.ChainInfo(ctx)
	return ci, grpcErr(err)
}

// QuorumSource is implemented by replicated ledger nodes that can show a
// log head signed by a quorum of validators.
type QuorumSource interface {
	QuorumCheckpoint(ctx context.Context) (*ledgerv1.QuorumCheckpoint, error)
}

func (s *GRPCServer) GetQuorumCheckpoint(ctx context.Context, _ *ledgerv1.GetQuorumCheckpointRequest) (*ledgerv1.QuorumCheckpoint, error) {
	q, ok := s.API.(QuorumSource)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this ledger node is not replicated: it has no quorum checkpoints (trust its node key instead)")
	}
	qc, err := q.QuorumCheckpoint(ctx)
	return qc, grpcErr(err)
}

func (s *GRPCServer) GetConsistency(ctx context.Context, r *ledgerv1.GetConsistencyRequest) (*ledgerv1.ConsistencyProof, error) {
	p, err := s.API.Consistency(ctx, r.FromSize, r.ToSize)
	return p, grpcErr(err)
}

func (s *GRPCServer) GetModel(ctx context.Context, r *ledgerv1.GetModelRequest) (*ledgerv1.GetModelResponse, error) {
	m, err := s.API.Model(ctx, r.ModelId, r.WithVerifyingKey)
	return m, grpcErr(err)
}

func (s *GRPCServer) ListModels(ctx context.Context, _ *ledgerv1.ListModelsRequest) (*ledgerv1.ListModelsResponse, error) {
	ms, err := s.API.Models(ctx)
	return &ledgerv1.ListModelsResponse{Models: ms}, grpcErr(err)
}

func (s *GRPCServer) GetRequest(ctx context.Context, r *ledgerv1.GetRequestRequest) (*ledgerv1.RequestRecord, error) {
	rec, err := s.API.Request(ctx, r.RequestKey)
	return rec, grpcErr(err)
}

func (s *GRPCServer) ListRequests(ctx context.Context, r *ledgerv1.ListRequestsRequest) (*ledgerv1.ListRequestsResponse, error) {
	rs, err := s.API.Requests(ctx, r)
	return &ledgerv1.ListRequestsResponse{Requests: rs}, grpcErr(err)
}

func (s *GRPCServer) GetSetup(ctx context.Context, r *ledgerv1.GetSetupRequest) (*ledgerv1.SetupRecord, error) {
	rec, err := s.API.Setup(ctx, r.CeremonyId, r.Phase)
	return rec, grpcErr(err)
}

func (s *GRPCServer) ListRejections(ctx context.Context, _ *ledgerv1.ListRejectionsRequest) (*ledgerv1.ListRejectionsResponse, error) {
	rs, err := s.API.Rejections(ctx)
	return &ledgerv1.ListRejectionsResponse{Rejections: rs}, grpcErr(err)
}

// MaxMessageBytes bounds gRPC messages: the largest transaction (a
// dispute) plus framing.
const MaxMessageBytes = ledger.MaxDisputeTxBytes + 64<<10

// NewGRPCServer returns a grpc.Server serving api.
func NewGRPCServer(api ledger.API) *grpc.Server {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(MaxMessageBytes))
	ledgerv1.RegisterLedgerServiceServer(srv, &GRPCServer{API: api})
	return srv
}

// Serve serves api over gRPC on grpcLn and HTTP on httpLn (either may be
// nil) until ctx ends, then shuts both down.
func Serve(ctx context.Context, api ledger.API, grpcLn, httpLn net.Listener) error {
	errc := make(chan error, 2)
	var gs *grpc.Server
	var hs *http.Server
	if grpcLn != nil {
		gs = NewGRPCServer(api)
		go func() { errc <- gs.Serve(grpcLn) }()
	}
	if httpLn != nil {
		hs = &http.Server{Handler: NewHTTPHandler(api), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if gs != nil {
		gs.GracefulStop()
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}
	return err
}

// ListenAndServe listens for gRPC on grpcAddr and for HTTP on httpAddr
// (empty or "off": not at all), tells ready the bound addresses (nil for
// one not served), and serves api until ctx ends.
func ListenAndServe(ctx context.Context, api ledger.API, grpcAddr, httpAddr string, ready func(grpcAt, httpAt net.Addr)) error {
	gl, err := listen(grpcAddr, "gRPC")
	if err != nil {
		return err
	}
	hl, err := listen(httpAddr, "HTTP")
	if err != nil {
		if gl != nil {
			gl.Close()
		}
		return err
	}
	if ready != nil {
		ready(addrOf(gl), addrOf(hl))
	}
	return Serve(ctx, api, gl, hl)
}

func listen(addr, what string) (net.Listener, error) {
	if addr == "" || addr == "off" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	return l, nil
}

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}
