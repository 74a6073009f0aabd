package federated

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Traffic counts the bytes a gRPC connection sends and receives, on the
// wire (messages with their gRPC framing, after compression if any). Pass
// it to grpc.WithStatsHandler for an owner's connection to the
// coordinator.
type Traffic struct {
	out, in atomic.Int64
}

var _ stats.Handler = (*Traffic)(nil)

// Totals returns the bytes sent and received so far.
func (t *Traffic) Totals() (sent, received int64) { return t.out.Load(), t.in.Load() }

// TagRPC implements stats.Handler.
func (t *Traffic) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler.
func (t *Traffic) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.OutPayload:
		t.out.Add(int64(p.WireLength))
	case *stats.InPayload:
		t.in.Add(int64(p.WireLength))
	}
}

// TagConn implements stats.Handler.
func (t *Traffic) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (t *Traffic) HandleConn(context.Context, stats.ConnStats) {}
