package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
)

func newTestRunner(t testing.TB) *runner {
	t.Helper()
	f, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	return &runner{s: QuickSuite(), def: f.Model, res: &Result{}}
}

// syntheticResult is a complete, plausible result for the quick suite,
// built from the suite's definition (not from a run), to test Validate.
func syntheticResult(t *testing.T) *Result {
	t.Helper()
	s := QuickSuite()
	r := &Result{Schema: SchemaVersion, Suite: s, Environment: CaptureEnvironment(context.Background()), DurationS: 40}
	r.Environment.LoadAvgEnd = []float64{1, 1, 1}
	if len(r.Environment.LoadAvgStart) != 3 {
		r.Environment.LoadAvgStart = []float64{1, 1, 1}
	}
	if r.Environment.Libraries["github.com/tuneinsight/lattigo/v6"] == "" {
		r.Environment.Libraries["github.com/tuneinsight/lattigo/v6"] = "v6.1.1"
	}
	lat := func(stage, name string, p Params) {
		r.Latencies = append(r.Latencies, Latency{Stage: stage, Name: name, Params: p, Unit: "ms", Summary: stats.Summarize([]float64{1, 2, 3})})
	}
	for _, st := range []string{StageHE, StagePlaintext, StageGRPC, StageZK, StageLedger} {
		r.Stages = append(r.Stages, StageResult{Name: st, Status: StatusOK, Seconds: 1})
	}
	for _, logN := range s.HE.LogN {
		for _, h := range s.HE.Hidden {
			kp := Params{LogN: logN, Hidden: h, Model: s.HE.modelName(h)}
			lat(StageHE, "keygen", kp)
			for _, n := range []string{"evaluation_keys", "input_ciphertext", "output_ciphertext"} {
				r.Sizes = append(r.Sizes, Size{Stage: StageHE, Name: n, Params: kp, Bytes: 1000})
			}
			for _, w := range s.HE.Workers {
				for _, img := range s.HE.Images {
					p := Params{LogN: logN, Hidden: h, Images: img, Workers: w, Model: kp.Model}
					for _, n := range append([]string{"encrypt", "evaluate", "decrypt", "end_to_end", "end_to_end_per_image"}, EvaluationStageNames()...) {
						lat(StageHE, n, p)
					}
				}
			}
		}
	}
	lat(StagePlaintext, "forward_fixed", Params{Model: "default"})
	lat(StagePlaintext, "forward_float", Params{Model: "default"})
	r.Accuracy = Accuracy{Model: "m", PlaintextImages: 100, PlaintextFixed: 0.98, PlaintextFloat: 0.98, EncryptedImages: 8, Encrypted: 1, Agreement: 1, MaxAbsError: 0.1}
	r.Ratios = []Ratio{{Name: "a", Numerator: "x", Denominator: "y", Value: 500}, {Name: "b", Numerator: "x", Denominator: "y", Value: 600}}
	lat(StageGRPC, "infer_round_trip", Params{Model: "default"})
	tp := func(stage, name string, clients int) {
		r.Throughput = append(r.Throughput, Throughput{Stage: stage, Name: name, Params: Params{Clients: clients}, PerSecond: 5, Unit: "x/s", Operations: 10, Seconds: 2, Latency: stats.Summarize([]float64{100, 200})})
	}
	for _, c := range s.GRPC.Clients {
		tp(StageGRPC, "infer", c)
	}
	for _, b := range s.ZK.Batches {
		p := Params{Batch: b, Model: s.ZK.Model}
		lat(StageZK, "prove", p)
		lat(StageZK, "verify", p)
		r.Sizes = append(r.Sizes, Size{Stage: StageZK, Name: "groth16_proof", Params: p, Bytes: 196})
	}
	for _, n := range []string{"receipt", "reveal", "challenge_proof"} {
		tp(StageLedger, n, s.Ledger.Submitters)
	}
	return r
}

func TestValidateAcceptsCompleteResult(t *testing.T) {
	if err := Validate(syntheticResult(t)); err != nil {
		t.Fatal(err)
	}
}

// Each mutation must be reported, with a message naming the problem.
func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name, want string
		mutate     func(r *Result)
	}{
		{"p95 below median", "not ordered", func(r *Result) { r.Latencies[3].P95 = r.Latencies[3].Median / 2 }},
		{"zero latency", "minimum", func(r *Result) { r.Latencies[0].Min = 0 }},
		{"no samples", "no samples", func(r *Result) { r.Latencies[1].N = 0 }},
		{"wrong unit", "unit", func(r *Result) { r.Latencies[2].Unit = "s" }},
		{"missing grid point", "no evaluate/square latency", func(r *Result) {
			for i, l := range r.Latencies {
				if l.Name == "evaluate/square" {
					r.Latencies = append(r.Latencies[:i], r.Latencies[i+1:]...)
					return
				}
			}
		}},
		{"accuracy above one", "outside [0, 1]", func(r *Result) { r.Accuracy.Encrypted = 1.5 }},
		{"negative agreement", "outside [0, 1]", func(r *Result) { r.Accuracy.Agreement = -0.1 }},
		{"empty size", "bytes", func(r *Result) { r.Sizes[0].Bytes = 0 }},
		{"failed stage", "stage zk failed", func(r *Result) { r.Stages[3].Status, r.Stages[3].Reason = StatusFailed, "boom" }},
		{"silent skip", "without a reason", func(r *Result) { r.Stages[4].Status = StatusSkipped }},
		{"missing stage", "stage ledger missing", func(r *Result) { r.Stages = r.Stages[:4] }},
		{"no CPU", "CPU model", func(r *Result) { r.Environment.CPUModel = "" }},
		{"no commit", "git commit", func(r *Result) { r.Environment.GitCommit = "" }},
		{"no lattigo version", "Lattigo", func(r *Result) { delete(r.Environment.Libraries, "github.com/tuneinsight/lattigo/v6") }},
		{"schema", "schema", func(r *Result) { r.Schema = "other" }},
		{"zero throughput", "throughput", func(r *Result) { r.Throughput[0].PerSecond = 0 }},
		{"missing ledger phase", "no reveal throughput", func(r *Result) {
			for i, t := range r.Throughput {
				if t.Name == "reveal" {
					r.Throughput = append(r.Throughput[:i], r.Throughput[i+1:]...)
					return
				}
			}
		}},
		{"infinite ratio", "ratio", func(r *Result) { r.Ratios[0].Value = 0 }},
		{"failed peer", "peer seal", func(r *Result) { r.Peer = &PeerResult{Name: "seal", Status: StatusFailed, Reason: "x"} }},
		{"peer without ratios", "no ratio", func(r *Result) {
			r.Peer = &PeerResult{Name: "seal", Status: StatusOK, Agreement: 1}
			for _, n := range []string{"keygen", "encrypt", "evaluate", "decrypt"} {
				r.Peer.Latencies = append(r.Peer.Latencies, Latency{Stage: StagePeer, Name: n, Unit: "ms", Summary: stats.Summarize([]float64{1})})
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := syntheticResult(t)
			c.mutate(r)
			err := Validate(r)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, c.want)
			}
		})
	}
	// A peer skipped with a reason is fine.
	r := syntheticResult(t)
	r.Peer = &PeerResult{Name: "seal", Status: StatusSkipped, Reason: "not installed"}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
}

func TestJSONRoundTripAndTable(t *testing.T) {
	r := syntheticResult(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/results.json"
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(back); err != nil {
		t.Fatalf("after a JSON round trip: %v", err)
	}
	if len(back.Latencies) != len(r.Latencies) || back.Latencies[0].Median != r.Latencies[0].Median {
		t.Fatal("latencies lost in the JSON round trip")
	}
	// Every field of the schema is present in the JSON, even when zero.
	for _, key := range []string{`"schema"`, `"suite"`, `"environment"`, `"cpu_model"`, `"git_commit"`, `"load_avg_start"`, `"libraries"`,
		`"stages"`, `"latencies"`, `"median"`, `"p95"`, `"sizes"`, `"counts"`, `"throughput"`, `"accuracy"`, `"ratios"`, `"duration_s"`} {
		if !bytes.Contains(buf.Bytes(), []byte(key)) {
			t.Errorf("results.json lacks %s", key)
		}
	}
	var tb bytes.Buffer
	if err := WriteTable(&tb, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| he | evaluate/matrix1 |", "| grpc | infer |", "## Accuracy", "98.00%"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestSuitesAreValid(t *testing.T) {
	for _, s := range []Suite{DefaultSuite(), QuickSuite()} {
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
	bad := QuickSuite()
	bad.HE.Images = []int{9}
	if err := bad.Check(); err == nil {
		t.Fatal("9 images in 8 blocks accepted")
	}
	bad = QuickSuite()
	bad.HE.Hidden = []int{256}
	if err := bad.Check(); err == nil {
		t.Fatal("hidden 256 (256+784 > 1024 slots) accepted")
	}
	bad = QuickSuite()
	bad.HE.Workers = []int{1}
	if err := bad.Check(); err == nil {
		t.Fatal("a grid without the default point accepted")
	}
}
