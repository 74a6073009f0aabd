package bench

// The suite and the workloads as `veil bench` runs them: run (or re-read),
// write the outputs, then check the results.

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// SuiteRun says which suite RunSuite runs and where its outputs go.
type SuiteRun struct {
	// Options has the data directory, the peer, the note, the log and the
	// progress of the run.
	Options
	// Out is the directory for results.json, results.md and the plots.
	Out string
	// From, when set, is an earlier results.json to re-render instead of
	// running.
	From string
	// Quick runs QuickSuite instead of DefaultSuite.
	Quick bool
	// InstallPeer installs Options.Peer first.
	InstallPeer bool
	// Status gets the peer's installation lines and, unless Quiet, the
	// files written.
	Status io.Writer
	Quiet  bool
}

// Suite is the suite the run runs.
func (r SuiteRun) Suite() Suite {
	if r.Quick {
		return QuickSuite()
	}
	return DefaultSuite()
}

// RunSuite runs the suite (or reads r.From) and writes its outputs, even
// when the results are incomplete, so that a failed stage can be looked at;
// the error then says so.
func RunSuite(ctx context.Context, r SuiteRun) (*Result, error) {
	var res *Result
	var err error
	if r.From != "" {
		res, err = ReadJSON(r.From)
	} else {
		res, err = r.run(ctx)
	}
	if err != nil {
		return nil, err
	}
	files, err := WriteOutputs(r.Out, res)
	if err == nil && !r.Quiet {
		fmt.Fprintf(r.Status, "veil: bench %s (%.0f s); wrote %s\n", res.Suite.Name, res.DurationS, strings.Join(files, ", "))
	}
	if verr := Validate(res); verr != nil && err == nil {
		err = fmt.Errorf("incomplete or implausible results (written anyway): %w", verr)
	}
	return res, err
}

func (r SuiteRun) run(ctx context.Context) (*Result, error) {
	if r.InstallPeer {
		fmt.Fprintf(r.Status, "veil: installing the SEAL peer (node-seal and Node.js 22 from npm) into %s\n", SealDir(r.DataDir))
		dir, err := InstallSeal(ctx, r.DataDir, r.Status)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(r.Status, "veil: SEAL peer installed in %s\n", dir)
	}
	return Run(ctx, r.Suite(), r.Options)
}

// RunWorkloadTo runs workload name and writes its outputs into out; the
// files written go to o.Log. The results are returned, and written, even
// when they break the workload's rules; the error then says so.
func RunWorkloadTo(ctx context.Context, name, out string, o WorkloadOptions) (*WorkloadResult, error) {
	res, err := RunWorkload(ctx, name, o)
	if err != nil {
		return nil, err
	}
	files, err := WriteWorkloadOutputs(out, res)
	if err == nil {
		fmt.Fprintf(o.Log, "veil: workload %s (%.0f s); wrote %s\n", name, res.DurationS, strings.Join(files, ", "))
	}
	if verr := res.Validate(); verr != nil && err == nil {
		err = fmt.Errorf("the workload's rules are not met (results written anyway): %w", verr)
	}
	return res, err
}
