package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus counters and histograms. They live in
// a registry owned by the server (no global state).
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec // by method and gRPC code
	evalSeconds  prometheus.Histogram   // evaluation time
	queueSeconds prometheus.Histogram   // time waiting for a worker
	sessions     prometheus.GaugeFunc   // live sessions
	sessionBytes prometheus.GaugeFunc   // memory held by keys
	uploadBytes  prometheus.Counter     // key bytes received
	evictions    *prometheus.CounterVec // by reason: idle, capacity
}

func newMetrics(store *sessionStore) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_rpc_requests_total", Help: "RPCs handled, by method and status code.",
	}, []string{"method", "code"})
	buckets := prometheus.ExponentialBuckets(0.005, 1.6, 16)
	m.evalSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "veil_evaluate_seconds", Help: "Homomorphic evaluation time per request.", Buckets: buckets,
	})
	m.queueSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "veil_queue_seconds", Help: "Time a request waited for an evaluation worker.", Buckets: buckets,
	})
	m.sessions = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "veil_sessions", Help: "Live sessions.",
	}, func() float64 { n, _ := store.stats(); return float64(n) })
	m.sessionBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "veil_session_key_bytes", Help: "Memory held by session keys.",
	}, func() float64 { _, b := store.stats(); return float64(b) })
	m.uploadBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "veil_key_upload_bytes_total", Help: "Evaluation-key bytes received.",
	})
	m.evictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "veil_session_evictions_total", Help: "Sessions dropped, by reason.",
	}, []string{"reason"})
	m.registry.MustRegister(m.requests, m.evalSeconds, m.queueSeconds, m.sessions, m.sessionBytes, m.uploadBytes, m.evictions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
