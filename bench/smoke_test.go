package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// TestQuickSuiteSmoke is the CI smoke test of `veil bench --quick --json`:
// it builds the veil binary, runs the quick suite with a fresh data
// directory, and checks that the JSON on stdout has every field with
// plausible values, that its sizes are the he package's, and that the
// tables and plots were written. It takes about a minute on 2 cores (the
// tiny circuit's Groth16 setup included).
func TestQuickSuiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick benchmark suite (about a minute)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the smoke test builds cmd/veil and needs the go command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "veil")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "../cmd/veil")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/veil: %v\n%s", err, out)
	}
	outDir := filepath.Join(tmp, "out")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--data", filepath.Join(tmp, "data"), "--quiet", "bench", "--quick", "--json", "--out", outDir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("veil bench --quick --json: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("veil bench --quick took %v", time.Since(start).Round(time.Second))

	// stdout is exactly one JSON document.
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	var r Result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not a result: %v", err)
	}
	if dec.More() {
		t.Fatal("stdout holds more than the JSON result")
	}
	if err := Validate(&r); err != nil {
		t.Fatalf("invalid result: %v", err)
	}
	if r.Suite.Name != "quick" {
		t.Fatalf("suite %q", r.Suite.Name)
	}
	for _, st := range r.Stages {
		if st.Status != StatusOK {
			t.Errorf("stage %s: %s (%s)", st.Name, st.Status, st.Reason)
		}
	}
	if r.Peer != nil {
		t.Errorf("peer ran without --peer")
	}

	// Environment.
	e := r.Environment
	if e.Cores < 1 || !strings.HasPrefix(e.GoVersion, "go") || e.Libraries["github.com/consensys/gnark"] == "" {
		t.Errorf("environment incomplete: %+v", e)
	}
	if _, err := exec.LookPath("git"); err == nil && !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(e.GitCommit) {
		t.Errorf("git commit %q is not a commit hash", e.GitCommit)
	}
	if _, err := time.Parse(time.RFC3339, e.Date); err != nil {
		t.Errorf("date %q: %v", e.Date, err)
	}

	// Sizes are the he package's, for the same parameters and model.
	p := he.DefaultParametersLiteral
	hctx, err := he.NewParameters(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	net, err := hctx.Compile(f.Model, he.DefaultEvaluationSettings)
	if err != nil {
		t.Fatal(err)
	}
	sk := hctx.GenSecretKey()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	bundle, _ := keys.MarshalBinary()
	ct, err := sk.Encrypt(net.Layout(), [][]uint8{make([]uint8, pixels.Count)})
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := ct.MarshalBinary()
	skeys, err := hctx.UnmarshalEvaluationKeys(bundle, net.GaloisElements())
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Evaluate(ctx, ct, skeys)
	if err != nil {
		t.Fatal(err)
	}
	ow, _ := out.MarshalBinary()
	kp := Params{LogN: p.LogN, Hidden: DefaultHidden, Model: "default"}
	for name, want := range map[string]int{"evaluation_keys": len(bundle), "input_ciphertext": len(wire), "output_ciphertext": len(ow)} {
		got, ok := r.SizeOf(StageHE, name, kp)
		if !ok || got.Bytes != int64(want) {
			t.Errorf("%s: %d bytes in the result, the he package makes %d", name, got.Bytes, want)
		}
	}

	// Plausible values.
	if r.Accuracy.PlaintextImages != 10000 || r.Accuracy.PlaintextFixed < 0.97 {
		t.Errorf("plaintext accuracy %.4f over %d images; the default model has 98.4%%", r.Accuracy.PlaintextFixed, r.Accuracy.PlaintextImages)
	}
	if r.Accuracy.EncryptedImages != r.Suite.Plaintext.EncryptedImages || r.Accuracy.Agreement < 0.875 {
		t.Errorf("encrypted classification agrees with plaintext on %.3f of %d images", r.Accuracy.Agreement, r.Accuracy.EncryptedImages)
	}
	for _, ra := range r.Ratios {
		if ra.Value < 10 {
			t.Errorf("ratio %s = %.1f: encrypted inference cannot be within 10x of plaintext", ra.Name, ra.Value)
		}
	}
	one, _ := r.LatencyOf(StageHE, "end_to_end", defaultPoint(1))
	eval, _ := r.LatencyOf(StageHE, "evaluate", defaultPoint(1))
	if !(one.Median >= eval.Median) {
		t.Errorf("end to end %.1f ms shorter than its evaluation %.1f ms", one.Median, eval.Median)
	}
	var stageSum float64
	for _, n := range EvaluationStageNames() {
		l, _ := r.LatencyOf(StageHE, n, defaultPoint(1))
		stageSum += l.Median
	}
	if stageSum > 2*eval.Median || stageSum < eval.Median/2 {
		t.Errorf("stage medians sum to %.1f ms, evaluation median is %.1f ms", stageSum, eval.Median)
	}

	// Files: results.json equal to stdout's, the tables, PNG and SVG plots.
	back, err := ReadJSON(filepath.Join(outDir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if back.Environment.Date != r.Environment.Date || len(back.Latencies) != len(r.Latencies) {
		t.Error("results.json differs from the JSON printed")
	}
	md, err := os.ReadFile(filepath.Join(outDir, "results.md"))
	if err != nil || !bytes.Contains(md, []byte("| he | evaluate |")) {
		t.Errorf("results.md: %v", err)
	}
	for _, name := range []string{PlotStages, PlotLogN, PlotProving, PlotThroughput} {
		fh, err := os.Open(filepath.Join(outDir, name+".png"))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, err := png.DecodeConfig(fh)
		fh.Close()
		if err != nil || cfg.Width < 200 || cfg.Height < 100 {
			t.Errorf("%s.png: %v (%dx%d)", name, err, cfg.Width, cfg.Height)
		}
		svg, err := os.ReadFile(filepath.Join(outDir, name+".svg"))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg: %v", name, err)
		}
	}
}
