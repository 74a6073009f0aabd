package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
)

// Config configures a Server. Zero values take the defaults noted.
type Config struct {
	// Models to serve (at least one). Their names are their ids.
	Models []*model.Model
	// Commitments maps a model id to its zk commitment (optional).
	Commitments map[string][]byte
	// Parameters are the CKKS parameters clients use (default
	// he.DefaultParametersLiteral).
	Parameters *he.ParametersLiteral
	// Evaluation are the server's evaluation settings (default
	// he.DefaultEvaluationSettings).
	Evaluation *he.EvaluationSettings
	// Probe are sample images (e.g. MNIST training images) that bound the
	// values of a general network (one with polynomial activations, or
	// other than dense layers, one square, dense layers): such a model is
	// compiled by he.CompileGeneral under parameters chosen for it, which
	// its ModelInfo announces. Required only when such a model is served;
	// when empty, ProbeSource is asked for them.
	Probe       [][]uint8
	ProbeSource func() ([][]uint8, error)
	// Workers is the number of concurrent evaluations (default: the number
	// of CPUs divided by the goroutines one evaluation uses, at least 1).
	Workers int
	// QueueTimeout bounds the wait for a worker (default 30 s); a request's
	// own deadline applies too.
	QueueTimeout time.Duration
	// MaxSessions and MaxSessionBytes cap the sessions held (default 64 and
	// 2 GiB).
	MaxSessions     int
	MaxSessionBytes int
	// IdleTimeout expires sessions not used for that long (default 30 min).
	IdleTimeout time.Duration
	// MaxKeyBytes bounds an uploaded key bundle (default 32 MiB).
	MaxKeyBytes int
	// SessionDir, when set, keeps key bundles on disk (mode 0600) so that
	// sessions survive a restart.
	SessionDir string
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
	// MaxUploadBytes bounds the key-bundle bytes being received at once,
	// all uploads together (default 4 × MaxKeyBytes).
	MaxUploadBytes int
	// MaxSessionsPerPeer caps the sessions one peer (client IP address, or
	// IPv6 /64)
	// holds (default 16). When the server is full, the sessions of the peer
	// holding the most are evicted first, so one client cannot flush the
	// others' sessions by opening many.
	MaxSessionsPerPeer int
	// Evaluator, when set, evaluates requests instead of the compiled
	// models (tests use it to play a dishonest server).
	Evaluator Evaluator
	// Recorder, when set, records verifiable requests (requests that carry
	// a client's challenge commitment) on the verifier ledger. Without it,
	// verifiable requests are refused.
	Recorder Recorder
}

// ErrBusy is wrapped by a Recorder's refusal of a valid request it cannot
// take now (the client should retry later): RESOURCE_EXHAUSTED.
var ErrBusy = errors.New("busy")

// Evaluator evaluates one served model on an input ciphertext under a
// session's evaluation keys.
type Evaluator interface {
	Evaluate(ctx context.Context, modelID string, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error)
}

// InferEvent describes one evaluation of a verifiable request.
type InferEvent struct {
	ModelID string
	// KeysDigest is the SHA-256 of the session's evaluation-key bundle: it
	// names the keys the evaluation used without revealing the session.
	KeysDigest [32]byte
	Input      []byte
	Output     []byte
	Verifiable *inferencev1.VerifiableRequest
}

// Receipt is what a Recorder made of an InferEvent.
type Receipt struct {
	Tx       []byte // the signed receipt transaction
	Index    uint64 // its log index, when already recorded
	Recorded bool
}

// Recorder records receipts of verifiable requests. Check runs before the
// evaluation (to refuse a malformed request early); Record after it.
type Recorder interface {
	Check(ctx context.Context, ev InferEvent) error
	Record(ctx context.Context, ev InferEvent) (*Receipt, error)
}

// Chunk size for key uploads; well under gRPC's 4 MiB default message limit.
const KeyChunkBytes = 1 << 20

// compiledNetwork is what the server needs of an encrypted network: the
// default he.Network or a general he.GeneralNetwork, each under its own
// parameters.
type compiledNetwork interface {
	Evaluate(ctx context.Context, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error)
	GaloisElements() []uint64
	Layout() he.Layout
	Parameters() *he.Parameters
	LogFloodSigma() float64
}

type servedModel struct {
	m    *model.Model
	net  compiledNetwork
	info *inferencev1.ModelInfo
}

// params are the CKKS parameters of the model's sessions.
func (sm *servedModel) params() *he.Parameters { return sm.net.Parameters() }

// Server implements the Inference gRPC service.
type Server struct {
	inferencev1.UnimplementedInferenceServer
	cfg     Config
	params  *he.Parameters
	models  map[string]*servedModel
	order   []string
	store   *sessionStore
	uploads *uploadBudget
	sem     chan struct{}
	metrics *metrics
	log     *slog.Logger
}

// New compiles the models and prepares the server.
func New(cfg Config) (*Server, error) {
	if len(cfg.Models) == 0 {
		return nil, errors.New("server: no model to serve")
	}
	lit, settings := he.DefaultParametersLiteral, he.DefaultEvaluationSettings
	if cfg.Parameters != nil {
		lit = *cfg.Parameters
	}
	if cfg.Evaluation != nil {
		settings = *cfg.Evaluation
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.NumCPU()/max(1, settings.Workers))
	}
	if cfg.QueueTimeout <= 0 {
		cfg.QueueTimeout = 30 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 64
	}
	if cfg.MaxSessionBytes <= 0 {
		cfg.MaxSessionBytes = 2 << 30
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = 32 << 20
	}
	if cfg.MaxSessionsPerPeer <= 0 {
		cfg.MaxSessionsPerPeer = 16
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 4 * cfg.MaxKeyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	params, err := he.NewParameters(lit)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, params: params, models: map[string]*servedModel{}, sem: make(chan struct{}, cfg.Workers), log: cfg.Logger}
	s.uploads = &uploadBudget{limit: int64(cfg.MaxUploadBytes)}
	s.store = newSessionStore(cfg.MaxSessionBytes, cfg.MaxSessions, cfg.MaxSessionsPerPeer, cfg.IdleTimeout, cfg.SessionDir, cfg.Now)
	s.metrics = newMetrics(s.store)
	for _, m := range cfg.Models {
		if _, dup := s.models[m.Name]; dup {
			return nil, fmt.Errorf("server: two models named %q", m.Name)
		}
		var net compiledNetwork
		if _, _, ferr := he.Fold(m); ferr == nil {
			if net, err = params.Compile(m, settings); err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
		} else {
			if len(cfg.Probe) == 0 && cfg.ProbeSource != nil {
				if cfg.Probe, err = cfg.ProbeSource(); err != nil {
					return nil, fmt.Errorf("server: probe images for %s: %w", m.Name, err)
				}
			}
			if len(cfg.Probe) == 0 {
				return nil, fmt.Errorf("server: model %s is a general network (%v): it needs probe images (Config.Probe) to choose its parameters", m.Name, ferr)
			}
			if net, err = he.CompileGeneral(m, he.GeneralOptions{Probe: cfg.Probe, Workers: settings.Workers}); err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
		}
		info, err := s.modelInfo(m, net)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		s.models[m.Name] = &servedModel{m: m, net: net, info: info}
		s.order = append(s.order, m.Name)
	}
	if err := s.restoreSessions(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) modelInfo(m *model.Model, net compiledNetwork) (*inferencev1.ModelInfo, error) {
	params := net.Parameters()
	lit := params.Literal()
	encoded, err := lit.MarshalBinary()
	if err != nil {
		return nil, err
	}
	secBits, _ := lit.SecurityBits()
	l := net.Layout()
	return &inferencev1.ModelInfo{
		Id:           m.Name,
		Architecture: model.ArchitectureOf(m).String(),
		Description:  m.Description,
		Classes:      int32(m.Classes),
		OutputFrac:   int32(m.OutputFrac()),
		Ckks: &inferencev1.CkksParameters{
			Literal: encoded, Fingerprint: params.Fingerprint(), Description: lit.String(),
			SecurityBits: int32(secBits), LogFloodSigma: net.LogFloodSigma(),
		},
		Layout:         &inferencev1.Layout{BlockSize: int32(l.BlockSize), Blocks: int32(l.Blocks), InputOffset: int32(l.InputOffset), Outputs: int32(l.Outputs)},
		GaloisElements: net.GaloisElements(),
		Commitment:     s.cfg.Commitments[m.Name],
	}, nil
}

// restoreSessions reloads the key bundles kept on disk.
func (s *Server) restoreSessions() error {
	saved, err := s.store.persisted()
	if err != nil {
		return err
	}
	for id, v := range saved {
		sm, ok := s.models[string(v[0])]
		if !ok {
			continue
		}
		keys, err := sm.params().UnmarshalEvaluationKeys(v[1], sm.net.GaloisElements())
		if err != nil {
			s.log.Warn("dropping unreadable saved session", "session", sessionTag(id), "err", err)
			continue
		}
		if err := s.store.add(&session{id: id, modelID: sm.m.Name, keys: keys, keysDigest: sha256.Sum256(v[1]), bytes: keys.MemoryBytes()}); err != nil {
			s.log.Warn("dropping saved session", "session", sessionTag(id), "err", err)
		}
	}
	return nil
}

// SetCommitment records a model's zk commitment (published by GetModel).
func (s *Server) SetCommitment(modelID string, commitment []byte) error {
	sm, ok := s.models[modelID]
	if !ok {
		return fmt.Errorf("unknown model %q", modelID)
	}
	sm.info.Commitment = slices.Clone(commitment)
	return nil
}

// Register adds the Inference service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { inferencev1.RegisterInferenceServer(g, s) }

// ListModels implements the RPC.
func (s *Server) ListModels(ctx context.Context, _ *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	out := &inferencev1.ListModelsResponse{}
	for _, id := range s.order {
		out.Models = append(out.Models, s.models[id].info)
	}
	return out, nil
}

// GetModel implements the RPC.
func (s *Server) GetModel(ctx context.Context, req *inferencev1.GetModelRequest) (*inferencev1.ModelInfo, error) {
	sm, ok := s.models[req.GetModelId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown model %q", req.GetModelId())
	}
	return sm.info, nil
}

// OpenSession implements the client-streaming RPC.
func (s *Server) OpenSession(stream grpc.ClientStreamingServer[inferencev1.OpenSessionChunk, inferencev1.OpenSessionResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return status.Error(codes.InvalidArgument, "empty upload: send a header first")
		}
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "the first message of an upload must be a header")
	}
	sm, ok := s.models[h.GetModelId()]
	if !ok {
		return status.Errorf(codes.NotFound, "unknown model %q", h.GetModelId())
	}
	total := h.GetTotalBytes()
	if total == 0 || total > uint64(s.cfg.MaxKeyBytes) {
		return status.Errorf(codes.InvalidArgument, "announced key bundle of %d bytes: must be in [1, %d]", total, s.cfg.MaxKeyBytes)
	}
	// Refuse before receiving megabytes: a peer whose sessions are all
	// busy at its cap would be refused at the end anyway, and uploads in
	// flight are bounded in total bytes.
	peer := peerOf(stream.Context())
	if err := s.store.canAdd(peer); err != nil {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	if !s.uploads.acquire(int64(total)) {
		return status.Errorf(codes.ResourceExhausted, "%d bytes of key uploads in flight: retry shortly", s.uploads.limit)
	}
	defer s.uploads.release(int64(total))
	// The buffer grows with what actually arrives: a header announcing 32
	// MiB reserves nothing.
	var buf []byte
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The client went away mid-upload: drop what we have.
			s.log.Info("key upload aborted", "request_id", requestID(stream.Context()), "received", len(buf), "err", err)
			return status.FromContextError(err).Err()
		}
		chunk := msg.GetKeys()
		if chunk == nil {
			return status.Error(codes.InvalidArgument, "after the header, an upload carries only key chunks")
		}
		if len(chunk) > KeyChunkBytes {
			return status.Errorf(codes.InvalidArgument, "key chunk of %d bytes exceeds %d", len(chunk), KeyChunkBytes)
		}
		if uint64(len(buf)+len(chunk)) > total {
			return status.Errorf(codes.InvalidArgument, "upload exceeds the announced %d bytes", total)
		}
		buf = append(buf, chunk...)
	}
	if uint64(len(buf)) != total {
		return status.Errorf(codes.InvalidArgument, "upload truncated: %d of %d announced bytes", len(buf), total)
	}
	s.metrics.uploadBytes.Add(float64(len(buf)))
	keys, err := sm.params().UnmarshalEvaluationKeys(buf, sm.net.GaloisElements())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "evaluation keys: %v", err)
	}
	id, err := newSessionID()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	digest := sha256.Sum256(buf)
	sess := &session{id: id, modelID: sm.m.Name, keys: keys, keysDigest: digest, bytes: keys.MemoryBytes(), peer: peer}
	if err := s.store.add(sess); err != nil {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	if err := s.store.persist(id, sm.m.Name, buf); err != nil {
		s.log.Warn("session not persisted", "session", sessionTag(id), "err", err)
	}
	s.log.Info("session opened", "request_id", requestID(stream.Context()), "session", sessionTag(id), "model", sm.m.Name, "key_bytes", len(buf))
	return stream.SendAndClose(&inferencev1.OpenSessionResponse{
		SessionId: id, IdleTimeoutSeconds: int64(s.cfg.IdleTimeout / time.Second), KeyBytes: uint64(len(buf)), KeysDigest: digest[:],
	})
}

func sessionError(err error) error {
	switch {
	case errors.Is(err, errExpiredSession):
		return status.Error(codes.NotFound, "session expired: open a new session")
	case errors.Is(err, errUnknownSession):
		return status.Error(codes.NotFound, "unknown session")
	}
	return status.Error(codes.Internal, err.Error())
}

// GetSession implements the RPC.
func (s *Server) GetSession(ctx context.Context, req *inferencev1.GetSessionRequest) (*inferencev1.SessionInfo, error) {
	sess, err := s.store.acquire(req.GetSessionId())
	if err != nil {
		return nil, sessionError(err)
	}
	defer s.store.release(sess)
	return &inferencev1.SessionInfo{SessionId: sess.id, ModelId: sess.modelID, IdleTimeoutSeconds: int64(s.cfg.IdleTimeout / time.Second)}, nil
}

// CloseSession implements the RPC.
func (s *Server) CloseSession(ctx context.Context, req *inferencev1.CloseSessionRequest) (*inferencev1.CloseSessionResponse, error) {
	if !s.store.remove(req.GetSessionId()) {
		return nil, status.Error(codes.NotFound, "unknown session")
	}
	return &inferencev1.CloseSessionResponse{}, nil
}

// Infer implements the RPC.
func (s *Server) Infer(ctx context.Context, req *inferencev1.InferRequest) (*inferencev1.InferResponse, error) {
	sess, err := s.store.acquire(req.GetSessionId())
	if err != nil {
		return nil, sessionError(err)
	}
	defer s.store.release(sess)
	sm := s.models[sess.modelID]
	t0 := time.Now()
	in, err := sm.params().UnmarshalCiphertext(req.GetCiphertext())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	event := InferEvent{ModelID: sess.modelID, KeysDigest: sess.keysDigest, Input: req.GetCiphertext(), Verifiable: req.GetVerifiable()}
	if v := req.GetVerifiable(); v != nil {
		if s.cfg.Recorder == nil {
			return nil, status.Error(codes.FailedPrecondition, "this server does not record verifiable requests")
		}
		if err := s.cfg.Recorder.Check(ctx, event); err != nil {
			if errors.Is(err, ErrBusy) {
				return nil, status.Errorf(codes.ResourceExhausted, "verifiable request: %v", err)
			}
			return nil, status.Errorf(codes.InvalidArgument, "verifiable request: %v", err)
		}
	}
	tDecoded := time.Now()
	// Wait for a worker, at most QueueTimeout or the request's deadline.
	timer := time.NewTimer(s.cfg.QueueTimeout)
	defer timer.Stop()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-timer.C:
		return nil, status.Errorf(codes.ResourceExhausted, "server busy: no evaluation worker free after %v", s.cfg.QueueTimeout)
	}
	tStart := time.Now()
	s.metrics.queueSeconds.Observe(tStart.Sub(tDecoded).Seconds())
	var out *he.Ciphertext
	if s.cfg.Evaluator != nil {
		out, err = s.cfg.Evaluator.Evaluate(ctx, sm.m.Name, in, sess.keys)
	} else {
		out, err = sm.net.Evaluate(ctx, in, sess.keys)
	}
	<-s.sem
	tEval := time.Now()
	if err != nil {
		if errors.Is(err, he.ErrInput) {
			return nil, status.Errorf(codes.InvalidArgument, "%v", err)
		}
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Errorf(codes.Internal, "evaluate: %v", err)
	}
	s.metrics.evalSeconds.Observe(tEval.Sub(tStart).Seconds())
	wire, err := out.MarshalBinary()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode result: %v", err)
	}
	tEnc := time.Now()
	rid := requestID(ctx)
	var receipt *Receipt
	if v := req.GetVerifiable(); v != nil {
		event.Output = wire
		receipt, err = s.cfg.Recorder.Record(ctx, event)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "record receipt: %v", err)
		}
		rid = v.GetRequestId()
	}
	s.log.Info("inference", "request_id", rid, "session", sessionTag(sess.id), "model", sess.modelID,
		"in_bytes", len(req.GetCiphertext()), "out_bytes", len(wire),
		"queue_ms", stats.Milliseconds(tStart.Sub(tDecoded)), "evaluate_ms", stats.Milliseconds(tEval.Sub(tStart)))
	resp := &inferencev1.InferResponse{
		Ciphertext: wire,
		RequestId:  rid,
		Timing: &inferencev1.Timing{
			DecodeMs: stats.Milliseconds(tDecoded.Sub(t0)), QueueMs: stats.Milliseconds(tStart.Sub(tDecoded)),
			EvaluateMs: stats.Milliseconds(tEval.Sub(tStart)), EncodeMs: stats.Milliseconds(tEnc.Sub(tEval)),
		},
	}
	if receipt != nil {
		resp.ReceiptTx, resp.ReceiptIndex, resp.ReceiptRecorded = receipt.Tx, receipt.Index, receipt.Recorded
	}
	return resp, nil
}

// sessionTag names a session in logs without the session id itself, which
// is a bearer token.
func sessionTag(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:4])
}

// peerOf is the client's address without its port, an IPv6 address
// reduced to its /64 (one site's addresses): sessions are capped per peer.
func peerOf(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	return peerOfAddr(p.Addr.String())
}

func peerOfAddr(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return host
}

// uploadBudget bounds the bytes of key bundles being received at once.
type uploadBudget struct {
	mu          sync.Mutex
	limit, used int64
}

func (b *uploadBudget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *uploadBudget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// Sweep expires idle sessions until ctx is done.
func (s *Server) Sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := s.store.sweep(); n > 0 {
				s.metrics.evictions.WithLabelValues("idle").Add(float64(n))
				s.log.Info("sessions expired", "count", n)
			}
		}
	}
}
