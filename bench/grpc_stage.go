package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/server"
)

func (r *runner) costGRPC() float64 {
	s := r.s.GRPC
	return 3 + float64(s.Reps)*0.1 + float64(len(s.Clients))*s.SecondsPerLevel
}

// loopback is a Veil inference server on 127.0.0.1 and a session of the
// default model's client keys.
type loopback struct {
	addr    string
	session string
	stop    func() error
}

func (r *runner) startServer(ctx context.Context) (*loopback, error) {
	srv, err := server.New(server.Config{Models: []*model.Model{r.def}})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(sctx, lis, server.Options{ShutdownGrace: 10 * time.Second, Ready: func(string, string) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("serve: %w", err)
	}
	return &loopback{addr: lis.Addr().String(), stop: func() error { cancel(); return <-done }}, nil
}

// runGRPC measures the service: key upload, one client's round trips, and
// throughput with concurrent clients sharing one session.
func (r *runner) runGRPC(ctx context.Context) (err error) {
	fix := r.defFix
	if fix == nil {
		return errors.New("no keys at the default parameters (the HE stage did not run them)")
	}
	s := r.s.GRPC
	lb, err := r.startServer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if e := lb.stop(); e != nil && err == nil {
			err = fmt.Errorf("server shutdown: %w", e)
		}
	}()
	conn, err := client.Dial(lb.addr, client.Options{})
	if err != nil {
		return err
	}
	defer conn.Close()
	p := Params{Model: s.model()}
	t0 := time.Now()
	sess, err := conn.OpenSession(ctx, r.def.Name, fix.Bundle)
	if err != nil {
		return err
	}
	r.addLatency(StageGRPC, "open_session", p, []float64{stats.Milliseconds(time.Since(t0))})
	r.addSize(StageGRPC, "key_upload", p, len(fix.Bundle))
	lb.session = sess.GetSessionId()

	layout := fix.Network.Layout()
	ct, err := fix.SecretKey.Encrypt(layout, r.images(0, layout.Blocks))
	if err != nil {
		return err
	}
	wire, err := ct.MarshalBinary()
	if err != nil {
		return err
	}
	var rtt, evalMS []float64
	for rep := 0; rep <= s.Reps; rep++ {
		t0 := time.Now()
		resp, err := conn.Infer(ctx, lb.session, wire)
		if err != nil {
			return err
		}
		if rep == 0 {
			continue
		}
		rtt = append(rtt, stats.Milliseconds(time.Since(t0)))
		if t := resp.GetTiming(); t != nil && t.GetEvaluateMs() > 0 {
			evalMS = append(evalMS, t.GetEvaluateMs())
		}
	}
	r.addLatency(StageGRPC, "infer_round_trip", p, rtt)
	r.addLatency(StageGRPC, "server_evaluate", p, evalMS)
	r.tick(3+float64(s.Reps)*0.1, "grpc round trips")

	for _, c := range s.Clients {
		tp, err := r.throughput(ctx, lb, wire, c, layout.Blocks)
		if err != nil {
			return fmt.Errorf("%d clients: %w", c, err)
		}
		r.res.Throughput = append(r.res.Throughput, tp)
		r.tick(s.SecondsPerLevel, fmt.Sprintf("grpc throughput, %d clients", c))
	}
	return nil
}

// throughput runs c clients, each on its own connection, sending the same
// ciphertext back to back for the suite's period.
func (r *runner) throughput(ctx context.Context, lb *loopback, wire []byte, c, imagesPerCT int) (Throughput, error) {
	period := time.Duration(r.s.GRPC.SecondsPerLevel * float64(time.Second))
	conns := make([]*client.Conn, c)
	for i := range conns {
		cn, err := client.Dial(lb.addr, client.Options{})
		if err != nil {
			return Throughput{}, err
		}
		defer cn.Close()
		// One request first, so connection setup is not timed.
		if _, err := cn.Infer(ctx, lb.session, wire); err != nil {
			return Throughput{}, err
		}
		conns[i] = cn
	}
	var mu sync.Mutex
	var lat []float64
	var firstErr error
	start := time.Now()
	deadline := start.Add(period)
	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				_, err := cn.Infer(ctx, lb.session, wire)
				d := stats.Milliseconds(time.Since(t0))
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return Throughput{}, firstErr
	}
	if len(lat) == 0 {
		return Throughput{}, errors.New("no request completed")
	}
	per := float64(len(lat)) / el
	return Throughput{
		Stage: StageGRPC, Name: "infer", Params: Params{Clients: c, Images: imagesPerCT, Model: r.s.GRPC.model()},
		PerSecond: per, Unit: "ciphertexts/s", ImagesPerSecond: per * float64(imagesPerCT),
		Operations: len(lat), Seconds: el, Latency: stats.Summarize(lat),
	}, nil
}
