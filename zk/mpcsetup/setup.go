package mpcsetup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"

	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/zk"
)

// Progress receives coarse progress reports from long operations: a stage
// name and done/total units (total may be 0 when unknown).
type Progress func(stage string, done, total int)

func (p Progress) report(stage string, done, total int) {
	if p != nil {
		p(stage, done, total)
	}
}

// SetupOfOne runs gnark's Groth16 MPC (phase 1 and phase 2) with a single
// contributor, this process, each phase sealed with a random beacon. The
// keys are then only as trustworthy as this machine: whoever controls it
// could forge proofs. Use a multi-party ceremony (Ceremony*) when the
// verifiers must not trust the prover. dataDir (optional) caches the
// phase-1 output by domain size. The transcript of both contributions is
// saved with the keys by SaveTranscript.
func SetupOfOne(ctx context.Context, spec *circuits.Spec, batch int, dataDir string, progress Progress) (*zk.ProvingKey, *Transcript, error) {
	progress.report("compile", 0, 0)
	r, err := zk.Compile(spec, batch)
	if err != nil {
		return nil, nil, err
	}
	n := zk.Domain(r)
	srs, lag, p1, err := phase1Cached(ctx, n, dataDir, progress)
	if err != nil {
		return nil, nil, err
	}
	progress.report("phase 2 init", 0, 0)
	p2, evals, err := initPhase2(ctx, r, srs, lag, func(d, t int) { progress.report("phase 2 init", d, t) })
	if err != nil {
		return nil, nil, err
	}
	progress.report("phase 2 contribution", 0, 0)
	p2.Contribute()
	var p2b bytes.Buffer
	if _, err := p2.WriteTo(&p2b); err != nil {
		return nil, nil, err
	}
	beacon, err := randomBytes(32)
	if err != nil {
		return nil, nil, err
	}
	progress.report("seal", 0, 0)
	gpk, gvk := p2.Seal(srs, evals, beacon)
	pk, err := zk.NewProvingKey(spec, batch, r, gpk, gvk)
	if err != nil {
		return nil, nil, err
	}
	return pk, &Transcript{Domain: n, Phase1: p1, Phase2: p2b.Bytes(), Beacon: beacon}, nil
}

// Transcript records a ceremony of one: the phase-1 contribution (as gnark
// encodes a Phase1, empty when phase 1 came from the cache, whose own
// transcript lies beside it), the phase-2 contribution and the beacon.
type Transcript struct {
	Domain uint64
	Phase1 []byte
	Phase2 []byte
	Beacon []byte
}

// Save writes the transcript into dir.
func (t *Transcript) Save(dir string) error {
	if len(t.Phase1) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "phase1.contribution"), t.Phase1, 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "phase2.contribution"), t.Phase2, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "beacon.hex"), []byte(fmt.Sprintf("%x\n", t.Beacon)), 0o600)
}

// phase1Cached returns the phase-1 SRS and its Lagrange basis for domain n,
// from dataDir/zk/phase1-<n> when present, else by a ceremony of one
// (which it then caches).
func phase1Cached(ctx context.Context, n uint64, dataDir string, progress Progress) (*gmpc.SrsCommons, *lagrangeBasis, []byte, error) {
	var dir string
	if dataDir != "" {
		dir = filepath.Join(dataDir, "zk", fmt.Sprintf("phase1-%d", n))
		if srs, lag, err := loadPhase1(dir); err == nil {
			progress.report("phase 1 (cached)", 1, 1)
			return srs, lag, nil, nil
		}
	}
	progress.report("phase 1 (ceremony of one)", 0, 0)
	beacon, err := randomBytes(32)
	if err != nil {
		return nil, nil, nil, err
	}
	tr, srs, lag, err := phase1OfOne(ctx, n, beacon)
	if err != nil {
		return nil, nil, nil, err
	}
	if dir != "" {
		if err := savePhase1(dir, srs, lag, tr, beacon); err != nil {
			return nil, nil, nil, fmt.Errorf("cache phase 1: %w", err)
		}
	}
	return srs, lag, tr, nil
}

func savePhase1(dir string, srs *gmpc.SrsCommons, lag *lagrangeBasis, tr, beacon []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "srs.bin.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := curve.NewEncoder(w, curve.RawEncoding())
	for _, v := range []any{srs.G1.Tau, srs.G1.AlphaTau, srs.G1.BetaTau, srs.G2.Tau, &srs.G2.Beta,
		lag.Tau1, lag.AlphaTau1, lag.BetaTau1, lag.Tau2} {
		if err := enc.Encode(v); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if len(tr) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "phase1.contribution"), tr, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "phase1.beacon.hex"), []byte(fmt.Sprintf("%x\n", beacon)), 0o600); err != nil {
			return err
		}
	}
	return os.Rename(tmp, filepath.Join(dir, "srs.bin"))
}

// loadPhase1 reads the cache without subgroup checks: it is this user's own
// file, written by savePhase1.
func loadPhase1(dir string) (*gmpc.SrsCommons, *lagrangeBasis, error) {
	f, err := os.Open(filepath.Join(dir, "srs.bin"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	dec := curve.NewDecoder(bufio.NewReaderSize(f, 1<<20), curve.NoSubgroupChecks())
	var srs gmpc.SrsCommons
	var lag lagrangeBasis
	for _, v := range []any{&srs.G1.Tau, &srs.G1.AlphaTau, &srs.G1.BetaTau, &srs.G2.Tau, &srs.G2.Beta,
		&lag.Tau1, &lag.AlphaTau1, &lag.BetaTau1, &lag.Tau2} {
		if err := dec.Decode(v); err != nil {
			return nil, nil, err
		}
	}
	n := len(srs.G2.Tau)
	if len(srs.G1.Tau) != 2*n-1 || len(lag.Tau1) != n || len(lag.Tau2) != n {
		return nil, nil, fmt.Errorf("phase-1 cache in %s is inconsistent", dir)
	}
	return &srs, &lag, nil
}

// randomBytes draws beacons for ceremonies of one.
func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// encodeTo serialises a gnark object.
func encodeTo(w io.WriterTo) ([]byte, error) {
	var b bytes.Buffer
	_, err := w.WriteTo(&b)
	return b.Bytes(), err
}
