package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Options configure a run.
type Options struct {
	// DataDir caches what is expensive to rebuild and not measured: Groth16
	// keys (under DataDir/bench/zk; keys made by `veil setup` are reused
	// read-only) and the installed peer (DataDir/peers/seal). Empty means
	// no cache: every run makes its own keys in a temporary directory.
	DataDir string
	// Peer is "" or "seal": run Microsoft SEAL (node-seal) side by side.
	Peer string
	// Progress, when set, receives the estimated work done and total (in
	// estimated seconds on a 2-core machine, so that a progress bar's rate
	// gives a realistic ETA) and the task that just finished.
	Progress func(done, total float64, task string)
	// Log receives one line per notable event (a stage skipped, a setup
	// run); nil discards them.
	Log io.Writer
	// Note is recorded in the environment (e.g. "shared machine").
	Note string
}

// errSkip marks a stage that could not run for a reason outside Veil (no
// MNIST files, peer not installed).
type errSkip struct{ reason string }

func (e errSkip) Error() string { return e.reason }

func skip(format string, a ...any) error { return errSkip{fmt.Sprintf(format, a...)} }

// runner carries one run's state.
type runner struct {
	s      Suite
	opt    Options
	res    *Result
	mnist  *dataset.Set // nil when the MNIST files are not found
	def    *model.Model // the committed default model
	done   float64
	total  float64
	defFix *he.LocalSession // keys and network at the default parameters and model
	zkArt  *zkArtifact
}

// Run runs the suite and returns its result. Stage failures are recorded
// in the result (Validate reports them), not returned; the error is for
// a cancelled context or an unusable suite.
func Run(ctx context.Context, s Suite, opt Options) (*Result, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if opt.Peer != "" && opt.Peer != "seal" {
		return nil, fmt.Errorf("unknown peer %q (known: seal)", opt.Peer)
	}
	start := time.Now()
	env := CaptureEnvironment(ctx)
	env.Note = opt.Note
	r := &runner{s: s, opt: opt, res: &Result{Schema: SchemaVersion, Suite: s, Environment: env}}
	if dir, err := dataset.FindMNISTDir(); err == nil {
		if set, err := dataset.LoadTest(dir); err == nil {
			r.mnist = set
		}
	}
	f, err := model.Default()
	if err != nil {
		return nil, err
	}
	r.def = f.Model
	r.total = r.plan()
	stages := []struct {
		name string
		run  func(context.Context) error
	}{
		{StageHE, r.runHE},
		{StagePlaintext, r.runPlaintext},
		{StageGRPC, r.runGRPC},
		{StageZK, r.runZK},
		{StageLedger, r.runLedger},
	}
	if opt.Peer != "" {
		stages = append(stages, struct {
			name string
			run  func(context.Context) error
		}{StagePeer, r.runPeer})
	}
	for _, st := range stages {
		t0 := time.Now()
		err := st.run(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		sr := StageResult{Name: st.name, Status: StatusOK, Seconds: time.Since(t0).Seconds()}
		var sk errSkip
		switch {
		case errors.As(err, &sk):
			sr.Status, sr.Reason = StatusSkipped, sk.reason
			r.logf("%s: skipped: %s", st.name, sk.reason)
		case err != nil:
			sr.Status, sr.Reason = StatusFailed, err.Error()
			r.logf("%s: FAILED: %v", st.name, err)
		}
		r.res.Stages = append(r.res.Stages, sr)
	}
	r.res.Environment.LoadAvgEnd = loadAvg()
	r.res.DurationS = time.Since(start).Seconds()
	if r.opt.Progress != nil {
		r.opt.Progress(r.total, r.total, "done")
	}
	return r.res, nil
}

func (r *runner) logf(format string, a ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, "veil bench: "+format+"\n", a...)
	}
}

// tick reports estimated work done.
func (r *runner) tick(cost float64, task string) {
	r.done = math.Min(r.done+cost, r.total)
	if r.opt.Progress != nil {
		r.opt.Progress(r.done, r.total, task)
	}
}

// Estimated costs, in seconds on this project's 2-core reference machine.
// They only drive the progress bar's ETA.
func scaleN(logN int) float64 { return math.Pow(2.3, float64(logN-13)) }

func costCompile(logN int) float64 { return 1.5 * scaleN(logN) }
func costKeygen(logN, reps int) float64 {
	return float64(reps) * 0.6 * scaleN(logN)
}
func costHEPoint(logN, workers, reps int) float64 {
	per := 0.09 * scaleN(logN)
	if workers == 1 {
		per *= 1.6
	}
	return float64(reps+1) * per
}

// plan returns the estimated total cost of the run.
func (r *runner) plan() float64 {
	s := r.s
	var t float64
	for _, logN := range s.HE.LogN {
		for range s.HE.Hidden {
			t += costCompile(logN) + costKeygen(logN, s.HE.KeygenReps)
			for _, w := range s.HE.Workers {
				t += costCompile(logN)
				for range s.HE.Images {
					t += costHEPoint(logN, w, s.HE.Reps)
				}
			}
		}
	}
	t += r.costPlaintext() + r.costGRPC() + r.costZK() + r.costLedger()
	if r.opt.Peer != "" {
		t += r.costPeer()
	}
	return t
}

// images returns n MNIST test images (or random ones without MNIST) as
// pixel slices, starting at image `from`.
func (r *runner) images(from, n int) [][]uint8 {
	out := make([][]uint8, n)
	imgs := r.imageArrays(from, n)
	for i := range out {
		out[i] = imgs[i][:]
	}
	return out
}

func (r *runner) imageArrays(from, n int) []pixels.Image {
	if r.mnist != nil && from+n <= r.mnist.Len() {
		return append([]pixels.Image(nil), r.mnist.Images[from:from+n]...)
	}
	return randomImages(n)
}
