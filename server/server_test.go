package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testcerts"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

type testEnv struct {
	srv    *Server
	addr   string
	http   string
	conn   *client.Conn
	cancel context.CancelFunc
	done   chan error
}

// start runs a real server on a loopback port.
func start(t *testing.T, cfg Config, opts Options) *testEnv {
	t.Helper()
	if len(cfg.Models) == 0 {
		cfg.Models = []*model.Model{defaultModel(t)}
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	env := &testEnv{srv: srv, addr: lis.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	opts.Ready = func(_, h string) { env.http = h; close(ready) }
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	go func() { env.done <- srv.Serve(ctx, lis, opts) }()
	<-ready
	if opts.TLSCert == "" {
		if env.conn, err = client.Dial(env.addr, client.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if env.conn != nil {
			env.conn.Close()
		}
		env.stop(t)
	})
	return env
}

func (e *testEnv) stop(t *testing.T) {
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		e.done <- nil
	case <-time.After(20 * time.Second):
		t.Error("server did not stop")
	}
}

func defaultModel(t testing.TB) *model.Model {
	f, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	return f.Model
}

// clientKeys is one client's key material for the default model.
type clientKeys struct {
	hctx   *he.Parameters
	net    *he.Network
	sk     *he.SecretKey
	bundle []byte
}

func newClientKeys(t testing.TB, p he.ParametersLiteral, s he.EvaluationSettings) *clientKeys {
	hctx, err := he.NewParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	net, err := hctx.Compile(defaultModel(t), s)
	if err != nil {
		t.Fatal(err)
	}
	sk := hctx.GenSecretKey()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &clientKeys{hctx, net, sk, b}
}

var sharedKeys = sync.OnceValue(func() *clientKeys {
	return newClientKeys(&testing.T{}, he.DefaultParametersLiteral, he.DefaultEvaluationSettings)
})

func mnist(t testing.TB) *dataset.Set {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := dataset.LoadTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (k *clientKeys) encrypt(t testing.TB, imgs ...[]uint8) []byte {
	ct, err := k.sk.Encrypt(k.net.Layout(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ct.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func wantStatus(t *testing.T, err error, code codes.Code, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v %q", code, substr)
	}
	st, _ := status.FromError(errors.Unwrap(err))
	if st == nil || st.Code() == codes.Unknown {
		st, _ = status.FromError(err)
	}
	if st.Code() != code || !strings.Contains(st.Message(), substr) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, substr)
	}
}

// The end-to-end path: a real server on loopback, the Go client, decrypted
// classes equal to the plaintext model's on a sample of MNIST.
func TestIntegrationClassifyMatchesPlaintext(t *testing.T) {
	env := start(t, Config{}, Options{MetricsAddr: "127.0.0.1:0"})
	ctx := context.Background()
	dir := t.TempDir()
	cl, err := client.NewClassifier(ctx, env.conn, client.ClassifierOptions{ModelID: model.DefaultName, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if cl.KeysReused || cl.SessionReused {
		t.Fatal("fresh data directory but keys reported reused")
	}
	m := defaultModel(t)
	test := mnist(t)
	layout := cl.Layout()
	// 16 images packed 8 per ciphertext, plus 3 alone in a random block.
	var checked int
	for start := 0; start < 16; start += layout.Blocks {
		imgs := make([][]uint8, layout.Blocks)
		for b := range imgs {
			imgs[b] = test.Images[start+b][:]
		}
		res, err := cl.Classify(ctx, imgs)
		if err != nil {
			t.Fatal(err)
		}
		for b := range imgs {
			plain, _ := m.Forward(imgs[b])
			if got, want := model.Class(res.Scores[b]), model.Class(plain); got != want {
				t.Errorf("image %d: encrypted class %d, plaintext class %d", start+b, got, want)
			}
			for r := range plain {
				if d := math.Abs(res.Scores[b][r] - float64(plain[r])*m.Scale()); d > 0.3 {
					t.Errorf("image %d score %d: decrypted %.3f, plaintext %.3f", start+b, r, res.Scores[b][r], float64(plain[r])*m.Scale())
				}
			}
			checked++
		}
	}
	for i, idx := range []int{100, 200, 300} {
		imgs := make([][]uint8, layout.Blocks)
		imgs[(i*3)%layout.Blocks] = test.Images[idx][:]
		res, err := cl.Classify(ctx, imgs)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := m.Forward(test.Images[idx][:])
		if model.Class(res.Scores[(i*3)%layout.Blocks]) != model.Class(plain) {
			t.Errorf("image %d: classes differ", idx)
		}
		checked++
	}
	// A second client run with the same data directory reuses everything.
	cl2, err := client.NewClassifier(ctx, env.conn, client.ClassifierOptions{ModelID: model.DefaultName, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !cl2.KeysReused || !cl2.SessionReused || cl2.SessionID() != cl.SessionID() {
		t.Fatalf("second run: keys reused %v, session reused %v", cl2.KeysReused, cl2.SessionReused)
	}
	fi, err := os.Stat(filepath.Join(dir, "client"))
	if err != nil {
		t.Fatal(err)
	}
	_ = fi
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, info.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Metrics count the requests.
	resp, err := http.Get("http://" + env.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`veil_rpc_requests_total{code="OK",method="/veil.inference.v1.Inference/Infer"} 5`)) {
		t.Fatalf("metrics do not count 5 inferences:\n%s", grepLines(body, "veil_rpc"))
	}
	t.Logf("%d images classified through the server", checked)
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Server reflection lets stock tools (grpcurl) list the services.
func TestReflectionListsServices(t *testing.T) {
	env := start(t, Config{}, Options{})
	cc, err := grpc.NewClient(env.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"veil.inference.v1.Inference", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Fatalf("services %v lack %s", names, want)
		}
	}
	models, err := env.conn.ListModels(context.Background())
	if err != nil || len(models) != 1 || models[0].GetId() != model.DefaultName || models[0].GetCkks().GetSecurityBits() != 128 {
		t.Fatalf("ListModels: %v %v", models, err)
	}
}

func openSession(t *testing.T, env *testEnv, bundle []byte) string {
	t.Helper()
	r, err := env.conn.OpenSession(context.Background(), model.DefaultName, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return r.GetSessionId()
}

// Every bad input gets a gRPC status with a clear message, and the server
// keeps serving.
func TestBadInputs(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	env := start(t, Config{Now: clock, IdleTimeout: time.Hour}, Options{})
	k := sharedKeys()
	ctx := context.Background()
	sess := openSession(t, env, k.bundle)
	good := k.encrypt(t, make([]uint8, pixels.Count))

	t.Run("unknown session", func(t *testing.T) {
		_, err := env.conn.Infer(ctx, "0123", good)
		wantStatus(t, err, codes.NotFound, "unknown session")
	})
	t.Run("truncated ciphertext", func(t *testing.T) {
		_, err := env.conn.Infer(ctx, sess, good[:len(good)/3])
		wantStatus(t, err, codes.InvalidArgument, "bytes of coefficients")
	})
	t.Run("random bytes", func(t *testing.T) {
		junk := make([]byte, 5000)
		_, _ = rand.Read(junk)
		_, err := env.conn.Infer(ctx, sess, junk)
		wantStatus(t, err, codes.InvalidArgument, "bad magic")
	})
	t.Run("wrong level", func(t *testing.T) {
		out, err := env.conn.Infer(ctx, sess, good)
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.conn.Infer(ctx, sess, out.GetCiphertext())
		wantStatus(t, err, codes.InvalidArgument, "level 0")
	})
	t.Run("wrong scale", func(t *testing.T) {
		bad := bytes.Clone(good)
		copy(bad[6:14], []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x41}) // 2^32
		_, err := env.conn.Infer(ctx, sess, bad)
		wantStatus(t, err, codes.InvalidArgument, "scale 2^32")
	})
	other := otherKeys(t)
	t.Run("ciphertext at other parameters", func(t *testing.T) {
		_, err := env.conn.Infer(ctx, sess, other.encrypt(t, make([]uint8, pixels.Count)))
		wantStatus(t, err, codes.InvalidArgument, "invalid ciphertext")
	})
	t.Run("keys for other parameters", func(t *testing.T) {
		_, err := env.conn.OpenSession(ctx, model.DefaultName, other.bundle)
		wantStatus(t, err, codes.InvalidArgument, "other parameters")
	})
	t.Run("missing rotation key", func(t *testing.T) {
		keys, err := k.sk.GenEvaluationKeys(k.net.GaloisElements()[1:])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := keys.MarshalBinary()
		_, err = env.conn.OpenSession(ctx, model.DefaultName, b)
		wantStatus(t, err, codes.InvalidArgument, "missing the rotation key")
	})
	t.Run("unknown model", func(t *testing.T) {
		_, err := env.conn.OpenSession(ctx, "nope", k.bundle)
		wantStatus(t, err, codes.NotFound, "unknown model")
	})
	t.Run("oversized message", func(t *testing.T) {
		_, err := env.conn.Infer(ctx, sess, make([]byte, 5<<20))
		wantStatus(t, err, codes.ResourceExhausted, "larger than max")
	})
	t.Run("oversized key bundle", func(t *testing.T) {
		stream, err := inferencev1.NewInferenceClient(env.conn.GRPC()).OpenSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Header{Header: &inferencev1.SessionHeader{ModelId: model.DefaultName, TotalBytes: 1 << 40}}})
		_, err = stream.CloseAndRecv()
		wantStatus(t, err, codes.InvalidArgument, "announced key bundle")
	})
	t.Run("upload without header", func(t *testing.T) {
		stream, _ := inferencev1.NewInferenceClient(env.conn.GRPC()).OpenSession(ctx)
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Keys{Keys: []byte("x")}})
		_, err := stream.CloseAndRecv()
		wantStatus(t, err, codes.InvalidArgument, "must be a header")
	})
	t.Run("upload shorter than announced", func(t *testing.T) {
		stream, _ := inferencev1.NewInferenceClient(env.conn.GRPC()).OpenSession(ctx)
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Header{Header: &inferencev1.SessionHeader{ModelId: model.DefaultName, TotalBytes: 100}}})
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Keys{Keys: make([]byte, 10)}})
		_, err := stream.CloseAndRecv()
		wantStatus(t, err, codes.InvalidArgument, "truncated")
	})
	t.Run("client disconnects mid-upload", func(t *testing.T) {
		before, _ := env.srv.store.stats()
		cctx, cancel := context.WithCancel(ctx)
		stream, err := inferencev1.NewInferenceClient(env.conn.GRPC()).OpenSession(cctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Header{Header: &inferencev1.SessionHeader{ModelId: model.DefaultName, TotalBytes: uint64(len(k.bundle))}}})
		_ = stream.Send(&inferencev1.OpenSessionChunk{Part: &inferencev1.OpenSessionChunk_Keys{Keys: k.bundle[:KeyChunkBytes]}})
		cancel()
		time.Sleep(200 * time.Millisecond)
		if after, _ := env.srv.store.stats(); after != before {
			t.Fatalf("%d sessions before, %d after an aborted upload", before, after)
		}
	})
	t.Run("expired session", func(t *testing.T) {
		s2 := openSession(t, env, k.bundle)
		now.Add(int64(2 * time.Hour))
		_, err := env.conn.Infer(ctx, s2, good)
		wantStatus(t, err, codes.NotFound, "session expired")
		sess = openSession(t, env, k.bundle) // the first one expired too
	})
	// After all that, the server still serves.
	if _, err := env.conn.Infer(ctx, sess, good); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
}

func otherKeys(t *testing.T) *clientKeys {
	p, s := he.DefaultParametersLiteral, he.DefaultEvaluationSettings
	p.LogQ = []int{58, 58}
	s.LogOutputWeightScale = 14
	return newClientKeys(t, p, s)
}

// 50 clients at once on 5 sessions: every request is answered correctly.
func TestConcurrentClients(t *testing.T) {
	env := start(t, Config{QueueTimeout: time.Minute}, Options{})
	k := sharedKeys()
	var sessions []string
	for i := 0; i < 5; i++ {
		sessions = append(sessions, openSession(t, env, k.bundle))
	}
	test := mnist(t)
	m := defaultModel(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn, err := client.Dial(env.addr, client.Options{})
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			img := test.Images[i][:]
			out, err := conn.Infer(context.Background(), sessions[i%5], k.encrypt(t, img))
			if err != nil {
				errs <- err
				return
			}
			ct, err := k.hctx.UnmarshalCiphertext(out.GetCiphertext())
			if err != nil {
				errs <- err
				return
			}
			scores, _ := k.sk.Decrypt(k.net.Layout(), ct)
			plain, _ := m.Forward(img)
			if model.Class(scores[0]) != model.Class(plain) {
				errs <- errors.New("class mismatch")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// With one worker and a tiny queue timeout, excess requests are refused
// with RESOURCE_EXHAUSTED rather than piling up.
func TestBusyServerRefuses(t *testing.T) {
	env := start(t, Config{Workers: 1, QueueTimeout: time.Millisecond}, Options{})
	k := sharedKeys()
	sess := openSession(t, env, k.bundle)
	ct := k.encrypt(t, make([]uint8, pixels.Count))
	var wg sync.WaitGroup
	var busy, ok atomic.Int32
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := env.conn.Infer(context.Background(), sess, ct)
			switch {
			case err == nil:
				ok.Add(1)
			case status.Code(errors.Unwrap(err)) == codes.ResourceExhausted && strings.Contains(err.Error(), "server busy"):
				busy.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 || busy.Load() == 0 {
		t.Fatalf("%d served, %d refused as busy; want some of each", ok.Load(), busy.Load())
	}
}

// Session caps: the least recently used idle session is evicted; keys that
// do not fit at all are refused.
func TestSessionCaps(t *testing.T) {
	env := start(t, Config{MaxSessions: 2}, Options{})
	k := sharedKeys()
	s1 := openSession(t, env, k.bundle)
	s2 := openSession(t, env, k.bundle)
	s3 := openSession(t, env, k.bundle)
	ctx := context.Background()
	if alive, _ := env.conn.SessionAlive(ctx, s1); alive {
		t.Fatal("the oldest session survived a third one with a cap of 2")
	}
	for _, s := range []string{s2, s3} {
		if alive, _ := env.conn.SessionAlive(ctx, s); !alive {
			t.Fatal("a recent session was evicted")
		}
	}
	small := start(t, Config{MaxSessionBytes: 1 << 20}, Options{})
	_, err := small.conn.OpenSession(ctx, model.DefaultName, k.bundle)
	wantStatus(t, err, codes.ResourceExhausted, "exceed")
}

// On shutdown, an in-flight request finishes; afterwards the port refuses.
func TestGracefulShutdown(t *testing.T) {
	env := start(t, Config{}, Options{})
	k := sharedKeys()
	sess := openSession(t, env, k.bundle)
	ct := k.encrypt(t, make([]uint8, pixels.Count))
	res := make(chan error, 1)
	go func() {
		_, err := env.conn.Infer(context.Background(), sess, ct)
		res <- err
	}()
	// Wait until the evaluation holds a worker, so the request is in flight.
	for deadline := time.Now().Add(10 * time.Second); len(env.srv.sem) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never started")
		}
	}
	env.cancel()
	if err := <-res; err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", err)
	}
	if err := <-env.done; err != nil {
		t.Fatal(err)
	}
	env.done <- nil
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := env.conn.Infer(ctx, sess, ct)
	if code := status.Code(errors.Unwrap(err)); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("after shutdown: %v", err)
	}
}

// Sessions kept on disk survive a restart.
func TestPersistedSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	k := sharedKeys()
	env := start(t, Config{SessionDir: dir}, Options{})
	sess := openSession(t, env, k.bundle)
	env.stop(t)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the session directory", len(entries))
	}
	if info, _ := entries[0].Info(); info.Mode().Perm() != 0o600 {
		t.Fatalf("session file mode %v", info.Mode().Perm())
	}
	env2 := start(t, Config{SessionDir: dir}, Options{})
	if _, err := env2.conn.Infer(context.Background(), sess, k.encrypt(t, make([]uint8, pixels.Count))); err != nil {
		t.Fatalf("session lost across a restart: %v", err)
	}
}

// TLS: a client that trusts the CA talks to the server; a plaintext client
// cannot.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := testcerts.SelfSigned(t, dir)
	env := start(t, Config{}, Options{TLSCert: certPath, TLSKey: keyPath})
	conn, err := client.Dial(env.addr, client.Options{TLSCA: certPath, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.ListModels(ctx); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	plain, _ := client.Dial(env.addr, client.Options{})
	defer plain.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if _, err := plain.ListModels(ctx2); err == nil {
		t.Fatal("plaintext client talked to a TLS server")
	}
}

// Key uploads in flight are bounded in total bytes: beyond the budget an
// upload is refused at its header, before any key byte is received.
func TestUploadBudgetRefusesAtTheHeader(t *testing.T) {
	k := sharedKeys()
	env := start(t, Config{MaxUploadBytes: len(k.bundle) - 1}, Options{})
	_, err := env.conn.OpenSession(context.Background(), model.DefaultName, k.bundle)
	wantStatus(t, err, codes.ResourceExhausted, "in flight")
}
