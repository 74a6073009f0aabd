package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// BenchmarkInProcess is the evaluation alone, as the server runs it.
func BenchmarkInProcess(b *testing.B) {
	k := sharedKeys()
	keys, err := k.hctx.UnmarshalEvaluationKeys(k.bundle, k.net.GaloisElements())
	if err != nil {
		b.Fatal(err)
	}
	wire := k.encrypt(b, make([]uint8, pixels.Count))
	for b.Loop() {
		ct, err := k.hctx.UnmarshalCiphertext(wire)
		if err != nil {
			b.Fatal(err)
		}
		out, err := k.net.Evaluate(context.Background(), ct, keys)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopback is one Infer RPC over gRPC on loopback; compare with
// BenchmarkInProcess for the network overhead.
func BenchmarkLoopback(b *testing.B) {
	env := start(&testing.T{}, Config{}, Options{})
	defer env.cancel()
	k := sharedKeys()
	r, err := env.conn.OpenSession(context.Background(), model.DefaultName, k.bundle)
	if err != nil {
		b.Fatal(err)
	}
	wire := k.encrypt(b, make([]uint8, pixels.Count))
	for b.Loop() {
		if _, err := env.conn.Infer(context.Background(), r.GetSessionId(), wire); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentClients runs c clients sending requests back to back
// and reports images per second and the 95th-percentile latency.
func BenchmarkConcurrentClients(b *testing.B) {
	for _, c := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			env := start(&testing.T{}, Config{}, Options{})
			defer env.cancel()
			k := sharedKeys()
			r, err := env.conn.OpenSession(context.Background(), model.DefaultName, k.bundle)
			if err != nil {
				b.Fatal(err)
			}
			wire := k.encrypt(b, make([]uint8, pixels.Count))
			var mu sync.Mutex
			var lat []float64
			b.ResetTimer()
			t0 := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < c; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < b.N; i += c {
						s := time.Now()
						if _, err := env.conn.Infer(context.Background(), r.GetSessionId(), wire); err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						lat = append(lat, float64(time.Since(s).Microseconds())/1000)
						mu.Unlock()
					}
				}(w)
			}
			wg.Wait()
			el := time.Since(t0)
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/el.Seconds(), "images/s")
				b.ReportMetric(lat[len(lat)/2], "p50-ms")
				b.ReportMetric(lat[min(len(lat)-1, len(lat)*95/100)], "p95-ms")
			}
		})
	}
}
