package bench

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Environment describes the machine and the build that produced a result.
type Environment struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`      // logical CPUs (runtime.NumCPU)
	GOMAXPROCS int    `json:"gomaxprocs"` // goroutines running Go code at once
	MemTotalMB int    `json:"mem_total_mb,omitempty"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GoVersion  string `json:"go_version"`
	// Module is the main module's path; Libraries maps the dependencies
	// that matter for the numbers (Lattigo, gnark, gRPC...) to their
	// versions, from runtime/debug.ReadBuildInfo.
	Module    string            `json:"module"`
	Libraries map[string]string `json:"libraries"`
	// GitCommit is the commit of the source tree (vcs.revision of the build,
	// else `git rev-parse HEAD`); GitDirty reports uncommitted changes.
	GitCommit string `json:"git_commit"`
	GitDirty  bool   `json:"git_dirty"`
	// Date is when the run started (UTC, RFC 3339).
	Date string `json:"date"`
	// LoadAvgStart and LoadAvgEnd are /proc/loadavg's 1, 5 and 15-minute
	// load averages before and after the run: on a machine with C cores, a
	// load well above C means the numbers are inflated by other work.
	LoadAvgStart []float64 `json:"load_avg_start"`
	LoadAvgEnd   []float64 `json:"load_avg_end"`
	// Uptime is the output of uptime(1) at the start, when available.
	Uptime string `json:"uptime,omitempty"`
	// Note is free text given with --note (e.g. "shared machine").
	Note string `json:"note,omitempty"`
}

// trackedLibraries are the dependencies whose versions are recorded.
var trackedLibraries = []string{
	"github.com/tuneinsight/lattigo/v6",
	"github.com/consensys/gnark",
	"github.com/consensys/gnark-crypto",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"go.etcd.io/bbolt",
	"github.com/cometbft/cometbft",
	"gonum.org/v1/plot",
	"gonum.org/v1/gonum",
}

// CaptureEnvironment records the environment now.
func CaptureEnvironment(ctx context.Context) Environment {
	e := Environment{
		CPUModel:     cpuModel(),
		Cores:        runtime.NumCPU(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		MemTotalMB:   memTotalMB(),
		OS:           runtime.GOOS,
		Arch:         runtime.GOARCH,
		GoVersion:    runtime.Version(),
		Libraries:    map[string]string{},
		Date:         time.Now().UTC().Format(time.RFC3339),
		LoadAvgStart: loadAvg(),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		e.Module = bi.Main.Path
		for _, d := range bi.Deps {
			for _, want := range trackedLibraries {
				if d.Path == want {
					v := d.Version
					if d.Replace != nil {
						v += " => " + d.Replace.Path + " " + d.Replace.Version
					}
					e.Libraries[d.Path] = v
				}
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				e.GitCommit = s.Value
			case "vcs.modified":
				e.GitDirty = s.Value == "true"
			}
		}
	}
	if e.GitCommit == "" {
		e.GitCommit, e.GitDirty = gitState(ctx)
	}
	if out, err := exec.CommandContext(ctx, "uptime").Output(); err == nil {
		e.Uptime = strings.TrimSpace(string(out))
	}
	return e
}

// cpuModel reads the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH + " (unknown model)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH + " (unknown model)"
}

// memTotalMB reads MemTotal from /proc/meminfo (0 if unavailable).
func memTotalMB() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.Atoi(f[0])
				return kb / 1024
			}
		}
	}
	return 0
}

// loadAvg reads the three load averages of /proc/loadavg (nil if
// unavailable).
func loadAvg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		out[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return out
}

// gitState asks git for the commit of the working directory's tree.
func gitState(ctx context.Context) (string, bool) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	commit := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return commit, err == nil && len(strings.TrimSpace(string(st))) > 0
}
