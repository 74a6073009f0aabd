package bench

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/veil-project/veil/internal/stats"
)

// SchemaVersion names the layout of results.json. It changes whenever a
// field changes meaning or disappears.
const SchemaVersion = "veil-bench/1"

// Stage names: the groups of measurements of a run.
const (
	StageHE        = "he"        // CKKS: keys, encryption, evaluation, decryption, sizes
	StagePlaintext = "plaintext" // the same model in the clear, and accuracy
	StageGRPC      = "grpc"      // the inference service on loopback
	StageZK        = "zk"        // Groth16 proofs of challenge batches
	StageLedger    = "ledger"    // the embedded verifier ledger
	StagePeer      = "peer"      // the same network in another library (SEAL)
)

// Stage statuses.
const (
	StatusOK      = "ok"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
)

// Result is the content of results.json: one run of a suite.
type Result struct {
	Schema      string      `json:"schema"`
	Suite       Suite       `json:"suite"`
	Environment Environment `json:"environment"`
	// DurationS is the wall-clock time of the whole run, in seconds.
	DurationS float64 `json:"duration_s"`
	// Stages tells which groups ran, were skipped (and why) or failed.
	Stages     []StageResult `json:"stages"`
	Latencies  []Latency     `json:"latencies"`
	Sizes      []Size        `json:"sizes"`
	Counts     []Count       `json:"counts"`
	Throughput []Throughput  `json:"throughput"`
	Accuracy   Accuracy      `json:"accuracy"`
	Ratios     []Ratio       `json:"ratios"`
	// Peer is the side-by-side run of another library (--peer), or nil.
	Peer *PeerResult `json:"peer,omitempty"`
}

// StageResult is the outcome of one stage.
type StageResult struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	Reason  string  `json:"reason,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Params locates a measurement in the suite's grid; unused fields are
// omitted.
type Params struct {
	LogN    int    `json:"log_n,omitempty"`
	Hidden  int    `json:"hidden,omitempty"`                // first hidden layer (the first matrix has this many rows)
	Images  int    `json:"images_per_ciphertext,omitempty"` // images packed in the ciphertext
	Workers int    `json:"workers,omitempty"`               // goroutines per evaluation
	Batch   int    `json:"batch,omitempty"`                 // images per proof
	Clients int    `json:"clients,omitempty"`               // concurrent clients or submitters
	Model   string `json:"model,omitempty"`
}

// String is a compact form for tables.
func (p Params) String() string {
	var parts []string
	add := func(k string, v int) {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	add("logN", p.LogN)
	add("hidden", p.Hidden)
	add("images", p.Images)
	add("workers", p.Workers)
	add("batch", p.Batch)
	add("clients", p.Clients)
	if p.Model != "" {
		parts = append(parts, "model="+p.Model)
	}
	return strings.Join(parts, " ")
}

// Latency is a repeated timing, in milliseconds.
type Latency struct {
	Stage  string `json:"stage"`
	Name   string `json:"name"`
	Params Params `json:"params"`
	Unit   string `json:"unit"` // always "ms"
	stats.Summary
}

// Size is a serialised size in bytes.
type Size struct {
	Stage  string `json:"stage"`
	Name   string `json:"name"`
	Params Params `json:"params"`
	Bytes  int64  `json:"bytes"`
}

// Count is a structural number: rotation keys, constraints.
type Count struct {
	Stage  string `json:"stage"`
	Name   string `json:"name"`
	Params Params `json:"params"`
	Value  int64  `json:"value"`
}

// Throughput is a rate measured over a fixed period with concurrent
// clients.
type Throughput struct {
	Stage  string `json:"stage"`
	Name   string `json:"name"`
	Params Params `json:"params"`
	// PerSecond is completed operations per second of wall-clock time;
	// Unit names the operation ("ciphertexts/s", "tx/s").
	PerSecond float64 `json:"per_second"`
	Unit      string  `json:"unit"`
	// ImagesPerSecond is PerSecond times the images per operation, when
	// operations carry images.
	ImagesPerSecond float64 `json:"images_per_second,omitempty"`
	Operations      int     `json:"operations"`
	Seconds         float64 `json:"seconds"`
	// Latency of each operation as its client saw it, in milliseconds.
	Latency stats.Summary `json:"latency_ms"`
}

// Accuracy compares encrypted and plaintext classification of MNIST test
// images with the default model. Rates are in [0, 1].
type Accuracy struct {
	Model string `json:"model"`
	// PlaintextImages test images classified in the clear.
	PlaintextImages int     `json:"plaintext_images"`
	PlaintextFixed  float64 `json:"plaintext_fixed"` // exact fixed-point Forward
	PlaintextFloat  float64 `json:"plaintext_float"` // Dequantize().Forward
	// EncryptedImages test images classified under CKKS (default
	// parameters), a subset of the plaintext ones.
	EncryptedImages int     `json:"encrypted_images"`
	Encrypted       float64 `json:"encrypted"`
	// Agreement is the fraction of encrypted classes equal to the fixed-point
	// Forward's class on the same images.
	Agreement float64 `json:"agreement"`
	// MaxAbsError is the largest |decrypted score - float score| over the
	// encrypted images (scores in real units).
	MaxAbsError float64 `json:"max_abs_error"`
}

// Ratio is a derived quotient of two medians.
type Ratio struct {
	Name        string  `json:"name"`
	Numerator   string  `json:"numerator"`
	Denominator string  `json:"denominator"`
	Value       float64 `json:"value"`
}

// LatencyOf returns the latency with this stage, name and parameters.
func (r *Result) LatencyOf(stage, name string, p Params) (Latency, bool) {
	for _, l := range r.Latencies {
		if l.Stage == stage && l.Name == name && l.Params == p {
			return l, true
		}
	}
	return Latency{}, false
}

// SizeOf returns the size with this stage, name and parameters.
func (r *Result) SizeOf(stage, name string, p Params) (Size, bool) {
	for _, s := range r.Sizes {
		if s.Stage == stage && s.Name == name && s.Params == p {
			return s, true
		}
	}
	return Size{}, false
}

// StageOf returns the outcome of a stage.
func (r *Result) StageOf(name string) (StageResult, bool) {
	for _, s := range r.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return StageResult{}, false
}

// Validate checks that a result is complete for its suite and plausible:
// every configuration of the suite has its measurements, latencies are
// positive with min <= median <= p95 <= max, sizes and rates are positive,
// accuracies lie in [0, 1], and the environment is filled in. Stages that
// were skipped must say why; a failed stage makes the result invalid.
func Validate(r *Result) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if r.Schema != SchemaVersion {
		bad("schema %q, want %q", r.Schema, SchemaVersion)
	}
	if r.Suite.Name == "" {
		bad("suite has no name")
	}
	e := r.Environment
	switch {
	case e.CPUModel == "":
		bad("environment: no CPU model")
	case e.Cores <= 0 || e.GOMAXPROCS <= 0:
		bad("environment: %d cores, GOMAXPROCS %d", e.Cores, e.GOMAXPROCS)
	case e.GoVersion == "" || e.OS == "" || e.Arch == "":
		bad("environment: Go version, OS or architecture missing")
	case e.GitCommit == "":
		bad("environment: no git commit")
	case e.Date == "":
		bad("environment: no date")
	case len(e.LoadAvgStart) != 3 || len(e.LoadAvgEnd) != 3:
		bad("environment: load averages %v, %v", e.LoadAvgStart, e.LoadAvgEnd)
	}
	if e.Libraries["github.com/tuneinsight/lattigo/v6"] == "" {
		bad("environment: Lattigo version missing")
	}
	if !(r.DurationS > 0) {
		bad("duration %g s", r.DurationS)
	}
	status := map[string]StageResult{}
	for _, s := range r.Stages {
		status[s.Name] = s
		switch s.Status {
		case StatusOK:
		case StatusSkipped:
			if s.Reason == "" {
				bad("stage %s skipped without a reason", s.Name)
			}
		case StatusFailed:
			bad("stage %s failed: %s", s.Name, s.Reason)
		default:
			bad("stage %s: unknown status %q", s.Name, s.Status)
		}
	}
	for _, name := range []string{StageHE, StagePlaintext, StageGRPC, StageZK, StageLedger} {
		if _, ok := status[name]; !ok {
			bad("stage %s missing", name)
		}
	}
	for _, l := range r.Latencies {
		errs = append(errs, checkLatency(l)...)
	}
	for _, s := range r.Sizes {
		if s.Bytes <= 0 {
			bad("size %s/%s %v: %d bytes", s.Stage, s.Name, s.Params, s.Bytes)
		}
	}
	for _, c := range r.Counts {
		if c.Value <= 0 {
			bad("count %s/%s %v: %d", c.Stage, c.Name, c.Params, c.Value)
		}
	}
	for _, t := range r.Throughput {
		if !(t.PerSecond > 0) || t.Operations <= 0 || !(t.Seconds > 0) || t.Unit == "" {
			bad("throughput %s/%s %v: %g %s over %d operations in %g s", t.Stage, t.Name, t.Params, t.PerSecond, t.Unit, t.Operations, t.Seconds)
		}
		if err := checkSummary(t.Latency); err != nil {
			bad("throughput %s/%s %v latency: %v", t.Stage, t.Name, t.Params, err)
		}
	}
	for _, ra := range r.Ratios {
		if !(ra.Value > 0) || math.IsInf(ra.Value, 0) || ra.Numerator == "" || ra.Denominator == "" {
			bad("ratio %s = %g", ra.Name, ra.Value)
		}
	}
	if status[StageHE].Status == StatusOK {
		errs = append(errs, checkHE(r)...)
	}
	if status[StagePlaintext].Status == StatusOK {
		errs = append(errs, checkPlaintext(r)...)
	}
	if status[StageGRPC].Status == StatusOK {
		for _, c := range r.Suite.GRPC.Clients {
			if !hasThroughput(r, StageGRPC, "infer", c) {
				bad("grpc: no throughput for %d clients", c)
			}
		}
		if _, ok := r.LatencyOf(StageGRPC, "infer_round_trip", Params{Model: r.Suite.GRPC.model()}); !ok {
			bad("grpc: no round-trip latency")
		}
	}
	if status[StageZK].Status == StatusOK {
		for _, b := range r.Suite.ZK.Batches {
			p := Params{Batch: b, Model: r.Suite.ZK.Model}
			for _, n := range []string{"prove", "verify"} {
				if _, ok := r.LatencyOf(StageZK, n, p); !ok {
					bad("zk: no %s latency for batch %d", n, b)
				}
			}
			if _, ok := r.SizeOf(StageZK, "groth16_proof", p); !ok {
				bad("zk: no proof size for batch %d", b)
			}
		}
	}
	if status[StageLedger].Status == StatusOK {
		for _, n := range []string{"receipt", "reveal", "challenge_proof"} {
			if !hasThroughput(r, StageLedger, n, r.Suite.Ledger.Submitters) {
				bad("ledger: no %s throughput", n)
			}
		}
	}
	if r.Peer != nil {
		errs = append(errs, checkPeer(r)...)
	}
	return errors.Join(errs...)
}

func hasThroughput(r *Result, stage, name string, clients int) bool {
	for _, t := range r.Throughput {
		if t.Stage == stage && t.Name == name && t.Params.Clients == clients {
			return true
		}
	}
	return false
}

func checkSummary(s stats.Summary) error {
	switch {
	case s.N <= 0:
		return fmt.Errorf("no samples")
	case !(s.Min > 0):
		return fmt.Errorf("minimum %g is not positive", s.Min)
	case !(s.Min <= s.Median && s.Median <= s.P95 && s.P95 <= s.Max):
		return fmt.Errorf("not ordered: min %g, median %g, p95 %g, max %g", s.Min, s.Median, s.P95, s.Max)
	case !(s.Mean >= s.Min && s.Mean <= s.Max):
		return fmt.Errorf("mean %g outside [%g, %g]", s.Mean, s.Min, s.Max)
	case math.IsInf(s.Max, 0) || math.IsNaN(s.Max):
		return fmt.Errorf("maximum %g", s.Max)
	}
	return nil
}

func checkLatency(l Latency) []error {
	var errs []error
	if l.Stage == "" || l.Name == "" {
		errs = append(errs, fmt.Errorf("latency without stage or name: %+v", l))
	}
	if l.Unit != "ms" {
		errs = append(errs, fmt.Errorf("latency %s/%s: unit %q, want ms", l.Stage, l.Name, l.Unit))
	}
	if err := checkSummary(l.Summary); err != nil {
		errs = append(errs, fmt.Errorf("latency %s/%s %v: %w", l.Stage, l.Name, l.Params, err))
	}
	return errs
}

// checkHE requires every configuration of the suite's grid.
func checkHE(r *Result) []error {
	var errs []error
	s := r.Suite.HE
	for _, logN := range s.LogN {
		for _, h := range s.Hidden {
			kp := Params{LogN: logN, Hidden: h, Model: s.modelName(h)}
			if _, ok := r.LatencyOf(StageHE, "keygen", kp); !ok {
				errs = append(errs, fmt.Errorf("he: no keygen for %v", kp))
			}
			for _, n := range []string{"evaluation_keys", "input_ciphertext", "output_ciphertext"} {
				if _, ok := r.SizeOf(StageHE, n, kp); !ok {
					errs = append(errs, fmt.Errorf("he: no %s size for %v", n, kp))
				}
			}
			for _, w := range s.Workers {
				for _, img := range s.Images {
					p := Params{LogN: logN, Hidden: h, Images: img, Workers: w, Model: s.modelName(h)}
					for _, n := range append([]string{"encrypt", "evaluate", "decrypt", "end_to_end", "end_to_end_per_image"}, EvaluationStageNames()...) {
						if _, ok := r.LatencyOf(StageHE, n, p); !ok {
							errs = append(errs, fmt.Errorf("he: no %s latency for %v", n, p))
						}
					}
				}
			}
		}
	}
	return errs
}

func checkPlaintext(r *Result) []error {
	var errs []error
	a := r.Accuracy
	for name, v := range map[string]float64{"plaintext_fixed": a.PlaintextFixed, "plaintext_float": a.PlaintextFloat, "encrypted": a.Encrypted, "agreement": a.Agreement} {
		if !(v >= 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("accuracy %s = %g, outside [0, 1]", name, v))
		}
	}
	if a.PlaintextImages <= 0 || a.EncryptedImages <= 0 || a.EncryptedImages > a.PlaintextImages {
		errs = append(errs, fmt.Errorf("accuracy over %d plaintext and %d encrypted images", a.PlaintextImages, a.EncryptedImages))
	}
	if !(a.MaxAbsError >= 0) || math.IsInf(a.MaxAbsError, 0) {
		errs = append(errs, fmt.Errorf("accuracy: max abs error %g", a.MaxAbsError))
	}
	for _, n := range []string{"forward_fixed", "forward_float"} {
		if _, ok := r.LatencyOf(StagePlaintext, n, Params{Model: "default"}); !ok {
			errs = append(errs, fmt.Errorf("plaintext: no %s latency", n))
		}
	}
	if len(r.Ratios) < 2 {
		errs = append(errs, fmt.Errorf("%d ratios, want the encrypted/plaintext ratios", len(r.Ratios)))
	}
	return errs
}

func checkPeer(r *Result) []error {
	p := r.Peer
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("peer without a name"))
	}
	switch p.Status {
	case StatusSkipped:
		if p.Reason == "" {
			errs = append(errs, errors.New("peer skipped without a reason"))
		}
		return errs
	case StatusOK:
	default:
		return append(errs, fmt.Errorf("peer %s: status %q: %s", p.Name, p.Status, p.Reason))
	}
	for _, l := range p.Latencies {
		errs = append(errs, checkLatency(l)...)
	}
	for _, n := range []string{"keygen", "encrypt", "evaluate", "decrypt"} {
		found := false
		for _, l := range p.Latencies {
			found = found || l.Name == n
		}
		if !found {
			errs = append(errs, fmt.Errorf("peer %s: no %s latency", p.Name, n))
		}
	}
	for _, s := range p.Sizes {
		if s.Bytes <= 0 {
			errs = append(errs, fmt.Errorf("peer size %s: %d bytes", s.Name, s.Bytes))
		}
	}
	if !(p.Agreement >= 0 && p.Agreement <= 1) {
		errs = append(errs, fmt.Errorf("peer agreement %g outside [0, 1]", p.Agreement))
	}
	if len(p.Ratios) == 0 {
		errs = append(errs, errors.New("peer ran but no ratio to Veil"))
	}
	for _, ra := range p.Ratios {
		if !(ra.Value > 0) {
			errs = append(errs, fmt.Errorf("peer ratio %s = %g", ra.Name, ra.Value))
		}
	}
	return errs
}
