package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// nameOrder sorts latencies the way the pipeline runs.
var nameOrder = append([]string{"compile", "keygen", "load_keys", "encrypt", "evaluate"}, append(EvaluationStageNames(),
	"decrypt", "end_to_end", "end_to_end_per_image", "forward_fixed", "forward_float", "open_session", "infer_round_trip", "server_evaluate", "setup", "prove", "verify")...)

func nameRank(n string) int {
	if i := slices.Index(nameOrder, n); i >= 0 {
		return i
	}
	return len(nameOrder)
}

func sortLatencies(ls []Latency) {
	slices.SortStableFunc(ls, func(a, b Latency) int { return nameRank(a.Name) - nameRank(b.Name) })
}

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText prints the tables (WriteTable).
func (r *Result) WriteText(w io.Writer) error { return WriteTable(w, r) }

// ReadJSON parses a results.json.
func ReadJSON(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// WriteOutputs writes results.json, results.md (the tables) and the plots
// (PNG and SVG) into dir, and returns the files written.
func WriteOutputs(dir string, r *Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	var files []string
	write := func(name string, f func(io.Writer) error) error {
		p := filepath.Join(dir, name)
		fh, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := f(fh); err != nil {
			fh.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := fh.Close(); err != nil {
			return err
		}
		files = append(files, p)
		return nil
	}
	if err := write("results.json", func(w io.Writer) error { return WriteJSON(w, r) }); err != nil {
		return files, err
	}
	if err := write("results.md", func(w io.Writer) error { return WriteTable(w, r) }); err != nil {
		return files, err
	}
	plots, err := WritePlots(dir, r)
	files = append(files, plots...)
	return files, err
}

// WriteTable writes the result as Markdown tables: environment, stages,
// latencies (median and p95), sizes, throughput, accuracy and ratios.
func WriteTable(w io.Writer, r *Result) error {
	e := r.Environment
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# veil bench: %s suite\n\n", r.Suite.Name)
	p("| environment | |\n|---|---|\n")
	p("| CPU | %s (%d logical cores, GOMAXPROCS %d, %d MB RAM) |\n", e.CPUModel, e.Cores, e.GOMAXPROCS, e.MemTotalMB)
	p("| Go | %s %s/%s |\n", e.GoVersion, e.OS, e.Arch)
	libs := make([]string, 0, len(e.Libraries))
	for k, v := range e.Libraries {
		libs = append(libs, k+" "+v)
	}
	slices.Sort(libs)
	p("| libraries | %s |\n", strings.Join(libs, ", "))
	dirty := ""
	if e.GitDirty {
		dirty = " (uncommitted changes)"
	}
	p("| commit | %s%s |\n| date | %s |\n", e.GitCommit, dirty, e.Date)
	p("| load average (1, 5, 15 min) | %v at start, %v at end |\n", e.LoadAvgStart, e.LoadAvgEnd)
	if e.Uptime != "" {
		p("| uptime | `%s` |\n", e.Uptime)
	}
	if e.Note != "" {
		p("| note | %s |\n", e.Note)
	}
	p("| duration | %.0f s |\n\n", r.DurationS)

	p("## Stages\n\n| stage | status | seconds | note |\n|---|---|---|---|\n")
	for _, s := range r.Stages {
		p("| %s | %s | %.1f | %s |\n", s.Name, s.Status, s.Seconds, s.Reason)
	}
	p("\n## Latencies (ms)\n\n| stage | measurement | parameters | n | median | p95 |\n|---|---|---|---|---|---|\n")
	ls := slices.Clone(r.Latencies)
	slices.SortStableFunc(ls, func(a, b Latency) int {
		if a.Stage != b.Stage {
			return strings.Compare(stageKey(a.Stage), stageKey(b.Stage))
		}
		if c := comparePoint(a.Params, b.Params); c != 0 {
			return c
		}
		return nameRank(a.Name) - nameRank(b.Name)
	})
	for _, l := range ls {
		p("| %s | %s | %s | %d | %s | %s |\n", l.Stage, l.Name, l.Params, l.N, fmtMS(l.Median), fmtMS(l.P95))
	}
	p("\n## Sizes\n\n| stage | item | parameters | bytes |\n|---|---|---|---|\n")
	for _, s := range r.Sizes {
		p("| %s | %s | %s | %s |\n", s.Stage, s.Name, s.Params, fmtBytes(s.Bytes))
	}
	for _, c := range r.Counts {
		p("| %s | %s (count) | %s | %d |\n", c.Stage, c.Name, c.Params, c.Value)
	}
	p("\n## Throughput\n\n| stage | operation | parameters | rate | images/s | operations | latency median (ms) | latency p95 (ms) |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.Throughput {
		img := ""
		if t.ImagesPerSecond > 0 {
			img = fmt.Sprintf("%.1f", t.ImagesPerSecond)
		}
		p("| %s | %s | %s | %.2f %s | %s | %d | %s | %s |\n", t.Stage, t.Name, t.Params, t.PerSecond, t.Unit, img, t.Operations, fmtMS(t.Latency.Median), fmtMS(t.Latency.P95))
	}
	a := r.Accuracy
	if a.PlaintextImages > 0 {
		p("\n## Accuracy (model %s)\n\n| measurement | value |\n|---|---|\n", a.Model)
		p("| plaintext fixed point (%d test images) | %.2f%% |\n", a.PlaintextImages, 100*a.PlaintextFixed)
		p("| plaintext float (%d test images) | %.2f%% |\n", a.PlaintextImages, 100*a.PlaintextFloat)
		p("| encrypted (%d test images) | %.2f%% |\n", a.EncryptedImages, 100*a.Encrypted)
		p("| encrypted class = fixed-point class | %.2f%% |\n", 100*a.Agreement)
		p("| largest score error vs float | %.2g |\n", a.MaxAbsError)
	}
	if len(r.Ratios) > 0 {
		p("\n## Encrypted / plaintext (same run)\n\n| ratio | value | numerator | denominator |\n|---|---|---|---|\n")
		for _, ra := range r.Ratios {
			p("| %s | %.0f× | %s | %s |\n", ra.Name, ra.Value, ra.Numerator, ra.Denominator)
		}
	}
	if pr := r.Peer; pr != nil {
		p("\n## Peer: %s (%s)\n\n", pr.Name, pr.Status)
		if pr.Reason != "" {
			p("%s\n\n", pr.Reason)
		}
		if pr.Status == StatusOK {
			p("%s on %s; %s, LogN %d, LogQ %v, LogP %v, %d slots = %d blocks of %d.\n\n", pr.Library, pr.Runtime, pr.Parameters.Scheme, pr.Parameters.LogN, pr.Parameters.LogQ, pr.Parameters.LogP, pr.Parameters.Slots, pr.Parameters.Blocks, pr.Parameters.BlockSize)
			p("Differences from Veil's evaluation:\n\n")
			for _, d := range pr.Differences {
				p("- %s\n", d)
			}
			p("\n| measurement | n | median (ms) | p95 (ms) |\n|---|---|---|---|\n")
			for _, l := range pr.Latencies {
				p("| %s | %d | %s | %s |\n", l.Name, l.N, fmtMS(l.Median), fmtMS(l.P95))
			}
			p("\n| item | bytes |\n|---|---|\n")
			for _, s := range pr.Sizes {
				p("| %s | %s |\n", s.Name, fmtBytes(s.Bytes))
			}
			p("\nClass agreement with the float model: %.0f%%; largest score error %.2g.\n", 100*pr.Agreement, pr.MaxAbsError)
			p("\n| SEAL / Veil | value | SEAL | Veil |\n|---|---|---|---|\n")
			for _, ra := range pr.Ratios {
				p("| %s | %.2f× | %s | %s |\n", ra.Name, ra.Value, ra.Numerator, ra.Denominator)
			}
		}
	}
	return nil
}

func stageKey(s string) string {
	i := slices.Index([]string{StageHE, StagePlaintext, StageGRPC, StageZK, StageLedger, StagePeer}, s)
	return fmt.Sprintf("%02d%s", i+1, s)
}

func comparePoint(a, b Params) int {
	for _, d := range []int{a.LogN - b.LogN, a.Hidden - b.Hidden, a.Workers - b.Workers, a.Images - b.Images, a.Batch - b.Batch, a.Clients - b.Clients} {
		if d != 0 {
			return d
		}
	}
	return 0
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%d (%.1f MB)", n, float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%d (%.1f KB)", n, float64(n)/1e3)
	default:
		return fmt.Sprint(n)
	}
}
