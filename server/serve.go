package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/veil-project/veil/internal/stats"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDHeader is the metadata key carrying a request id; the server
// makes one when the client sends none and returns it in the response
// header.
const RequestIDHeader = "x-request-id"

func requestID(ctx context.Context) string {
	if v, ok := ctx.Value(requestIDKey).(string); ok {
		return v
	}
	return ""
}

func withRequestID(ctx context.Context) (context.Context, string) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && len(v[0]) > 0 && len(v[0]) <= 64 {
			return context.WithValue(ctx, requestIDKey, v[0]), v[0]
		}
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return context.WithValue(ctx, requestIDKey, id), id
}

// UnaryInterceptor tags each request with an id, logs it and counts it.
func (s *Server) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, id := withRequestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	t0 := time.Now()
	resp, err := handler(ctx, req)
	code := status.Code(err)
	s.metrics.requests.WithLabelValues(info.FullMethod, code.String()).Inc()
	s.log.Debug("rpc", "method", info.FullMethod, "request_id", id, "code", code.String(), "ms", stats.Milliseconds(time.Since(t0)))
	if err != nil {
		s.log.Info("rpc failed", "method", info.FullMethod, "request_id", id, "code", code.String(), "err", status.Convert(err).Message())
	}
	return resp, err
}

type idStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w idStream) Context() context.Context { return w.ctx }

// StreamInterceptor is the streaming counterpart of UnaryInterceptor.
func (s *Server) StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, id := withRequestID(ss.Context())
	_ = ss.SetHeader(metadata.Pairs(RequestIDHeader, id))
	err := handler(srv, idStream{ss, ctx})
	code := status.Code(err)
	s.metrics.requests.WithLabelValues(info.FullMethod, code.String()).Inc()
	if err != nil {
		s.log.Info("rpc failed", "method", info.FullMethod, "request_id", id, "code", code.String(), "err", status.Convert(err).Message())
	}
	return err
}

// Options configure Serve.
type Options struct {
	// TLSCert and TLSKey are PEM files; both empty means plaintext (fine on
	// loopback).
	TLSCert, TLSKey string
	// MetricsAddr serves /metrics over HTTP; empty disables it.
	MetricsAddr string
	// Register adds more services (e.g. the ledger's) to the gRPC server.
	Register func(*grpc.Server)
	// HTTP adds handlers to the metrics HTTP server (e.g. the ledger's pages).
	HTTP func(*http.ServeMux)
	// ShutdownGrace bounds how long in-flight requests may run after ctx is
	// cancelled (default 30 s).
	ShutdownGrace time.Duration
	// Ready, when set, receives the gRPC and HTTP addresses once listening.
	Ready func(grpcAddr, httpAddr string)
	// Interceptors run after Veil's own (request ids, logs, metrics).
	Interceptors []grpc.UnaryServerInterceptor
	// MaxConcurrentStreams bounds the RPCs one connection has open at once
	// (default DefaultMaxConcurrentStreams).
	MaxConcurrentStreams uint32
}

// DefaultMaxConcurrentStreams is the per-connection bound on open RPCs.
const DefaultMaxConcurrentStreams = 16

// NewGRPCServer builds the gRPC server with Veil's interceptors, the
// standard health service and server reflection.
func (s *Server) NewGRPCServer(opts Options) (*grpc.Server, *health.Server, error) {
	streams := opts.MaxConcurrentStreams
	if streams == 0 {
		streams = DefaultMaxConcurrentStreams
	}
	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{s.UnaryInterceptor}, opts.Interceptors...)...),
		grpc.ChainStreamInterceptor(s.StreamInterceptor),
		// One connection cannot hold more than this many RPCs open (key
		// uploads included): HTTP/2's default is unbounded.
		grpc.MaxConcurrentStreams(streams),
	}
	if opts.TLSCert != "" || opts.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("load TLS key pair: %w", err)
		}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	g := grpc.NewServer(sopts...)
	s.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	if opts.Register != nil {
		opts.Register(g)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("veil.inference.v1.Inference", healthpb.HealthCheckResponse_SERVING)
	return g, hs, nil
}

// Serve runs the gRPC server on lis (and /metrics on opts.MetricsAddr)
// until ctx is cancelled, then shuts down gracefully: the health service
// reports NOT_SERVING, new RPCs are refused, in-flight ones finish (up to
// ShutdownGrace).
func (s *Server) Serve(ctx context.Context, lis net.Listener, opts Options) error {
	g, hs, err := s.NewGRPCServer(opts)
	if err != nil {
		return err
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 30 * time.Second
	}
	var httpSrv *http.Server
	httpAddr := ""
	if opts.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
		if opts.HTTP != nil {
			opts.HTTP(mux)
		}
		hl, err := net.Listen("tcp", opts.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		httpAddr = hl.Addr().String()
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = httpSrv.Serve(hl) }()
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go s.Sweep(sweepCtx, time.Minute)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	s.log.Info("serving", "addr", lis.Addr().String(), "metrics", httpAddr, "workers", s.cfg.Workers, "models", s.order)
	if opts.Ready != nil {
		opts.Ready(lis.Addr().String(), httpAddr)
	}
	select {
	case err := <-errc:
		if httpSrv != nil {
			_ = httpSrv.Close()
		}
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "grace", opts.ShutdownGrace)
	hs.Shutdown()
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(opts.ShutdownGrace):
		s.log.Warn("grace period over: stopping")
		g.Stop()
	}
	if httpSrv != nil {
		shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(shCtx)
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
