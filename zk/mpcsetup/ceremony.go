package mpcsetup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/fft"
	"github.com/consensys/gnark/backend/groth16"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/zk"
)

// A multi-party ceremony lives in a directory that the participants pass
// around (or share):
//
//	ceremony.json        model id, batch size, domain, circuit version
//	phase1-0000.bin      the empty phase 1 (CeremonyInit)
//	phase1-0001.bin ...  one file per phase-1 contribution
//	phase1.srs           the sealed SRS and its Lagrange basis (CeremonyClosePhase1)
//	phase1.beacon        the beacon that sealed phase 1
//	phase2-0000.bin      the initialised phase 2 (CeremonyClosePhase1)
//	phase2-0001.bin ...  one file per phase-2 contribution
//	phase2.beacon        the beacon that sealed phase 2 (CeremonyFinalize)
//
// Every contribution is gnark's mpcsetup Phase1/Phase2 encoding, with its
// proofs of knowledge; each participant runs CeremonyContribute once and
// keeps their randomness to themselves (gnark draws and discards it). The
// keys are sound if at least one participant was honest.

// CeremonyInfo is ceremony.json.
type CeremonyInfo struct {
	ModelID        string `json:"model_id"`
	Batch          int    `json:"batch"`
	Classes        int    `json:"classes"`
	Domain         uint64 `json:"domain"`
	Constraints    int    `json:"constraints"`
	CircuitVersion int    `json:"circuit_version"`
}

// circuitRef names the circuit a ceremony is for and compiles it. The
// exported functions build it from a spec; tests use small circuits.
type circuitRef struct {
	id      string
	batch   int
	classes int
	compile func() (*cs.R1CS, error)
}

func specRef(spec *circuits.Spec, batch int) circuitRef {
	id := spec.ID()
	return circuitRef{id: fmt.Sprintf("%x", id), batch: batch, classes: spec.Classes,
		compile: func() (*cs.R1CS, error) { return zk.Compile(spec, batch) }}
}

func (c circuitRef) check(ci *CeremonyInfo) error {
	if ci.ModelID != c.id || ci.Batch != c.batch || ci.CircuitVersion != zk.CircuitVersion {
		return fmt.Errorf("ceremony: it is for circuit %.16s (batch %d, version %d), not %.16s (batch %d, version %d)",
			ci.ModelID, ci.Batch, ci.CircuitVersion, c.id, c.batch, zk.CircuitVersion)
	}
	return nil
}

func phase1Closed(dir string) bool { return fileExists(filepath.Join(dir, "phase1.srs.d", "srs.bin")) }

func readInfo(dir string) (*CeremonyInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "ceremony.json"))
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	var ci CeremonyInfo
	if err := json.Unmarshal(b, &ci); err != nil {
		return nil, fmt.Errorf("ceremony.json: %w", err)
	}
	if ci.Domain == 0 || ci.Domain&(ci.Domain-1) != 0 || ci.Domain > 1<<24 {
		return nil, fmt.Errorf("ceremony.json: bad domain %d", ci.Domain)
	}
	return &ci, nil
}

// CeremonyInit starts a ceremony for spec and batch in dir (which must not
// hold one already).
func CeremonyInit(dir string, spec *circuits.Spec, batch int) (*CeremonyInfo, error) {
	return ceremonyInit(dir, specRef(spec, batch))
}

func ceremonyInit(dir string, c circuitRef) (*CeremonyInfo, error) {
	if _, err := os.Stat(filepath.Join(dir, "ceremony.json")); err == nil {
		return nil, fmt.Errorf("ceremony: %s already holds a ceremony", dir)
	}
	r, err := c.compile()
	if err != nil {
		return nil, err
	}
	ci := &CeremonyInfo{ModelID: c.id, Batch: c.batch, Classes: c.classes, Domain: zk.Domain(r),
		Constraints: r.GetNbConstraints(), CircuitVersion: zk.CircuitVersion}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	b, _ := json.MarshalIndent(ci, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "ceremony.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	if err := writeObj(filepath.Join(dir, "phase1-0000.bin"), gmpc.NewPhase1(ci.Domain)); err != nil {
		return nil, err
	}
	return ci, nil
}

func writeObj(path string, w io.WriterTo) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteTo(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readObj(path string, r io.ReaderFrom) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := r.ReadFrom(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// contributions lists phaseN-XXXX.bin in order and checks numbering.
func contributions(dir string, phase int) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("phase%d-*.bin", phase)))
	if err != nil {
		return nil, err
	}
	sort.Strings(m)
	for i, p := range m {
		if filepath.Base(p) != fmt.Sprintf("phase%d-%04d.bin", phase, i) {
			return nil, fmt.Errorf("ceremony: unexpected file %s (contributions must be numbered from 0000 without gaps)", p)
		}
	}
	return m, nil
}

// CeremonyContribute adds one contribution to the current phase (phase 2
// once phase 1 is closed) and returns the new file and its SHA-256, which
// the contributor publishes so that others can check it is in the chain.
func CeremonyContribute(ctx context.Context, dir string) (path string, hash [32]byte, err error) {
	if _, err := readInfo(dir); err != nil {
		return "", hash, err
	}
	closed := phase1Closed(dir)
	phase := 1
	if closed {
		phase = 2
	}
	files, err := contributions(dir, phase)
	if err != nil {
		return "", hash, err
	}
	if len(files) == 0 {
		return "", hash, fmt.Errorf("ceremony: no phase %d file in %s", phase, dir)
	}
	if len(files) >= 9999 {
		return "", hash, errors.New("ceremony: too many contributions")
	}
	path = filepath.Join(dir, fmt.Sprintf("phase%d-%04d.bin", phase, len(files)))
	var obj interface {
		io.WriterTo
		io.ReaderFrom
	}
	if phase == 1 {
		p := new(gmpc.Phase1)
		if err := readObj(files[len(files)-1], p); err != nil {
			return "", hash, err
		}
		if err := ctx.Err(); err != nil {
			return "", hash, err
		}
		p.Contribute()
		obj = p
	} else {
		p := new(gmpc.Phase2)
		if err := readObj(files[len(files)-1], p); err != nil {
			return "", hash, err
		}
		p.Contribute()
		obj = p
	}
	if err := writeObj(path, obj); err != nil {
		return "", hash, err
	}
	b, err := encodeTo(obj)
	if err != nil {
		return "", hash, err
	}
	return path, sha256.Sum256(b), nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// verifyPhase1Chain checks every phase-1 contribution and, given a beacon,
// seals the last one with it (gnark's VerifyPhase1).
func verifyPhase1Chain(ctx context.Context, dir string, ci *CeremonyInfo, beacon []byte) (*gmpc.SrsCommons, int, error) {
	files, err := contributions(dir, 1)
	if err != nil {
		return nil, 0, err
	}
	if len(files) < 2 {
		return nil, 0, errors.New("ceremony: phase 1 has no contribution")
	}
	var initial gmpc.Phase1
	if err := readObj(files[0], &initial); err != nil {
		return nil, 0, err
	}
	ib, _ := encodeTo(&initial)
	eb, _ := encodeTo(gmpc.NewPhase1(ci.Domain))
	if !bytes.Equal(ib, eb) {
		return nil, 0, errors.New("ceremony: phase1-0000.bin is not the empty phase 1")
	}
	chain := make([]*gmpc.Phase1, 0, len(files)-1)
	for _, f := range files[1:] {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		p := new(gmpc.Phase1)
		if err := readObj(f, p); err != nil {
			return nil, 0, err
		}
		chain = append(chain, p)
	}
	if beacon == nil {
		// Phase 1 still open: check the chain without sealing it.
		prev := &initial
		for i, p := range chain {
			if err := prev.Verify(p); err != nil {
				return nil, 0, fmt.Errorf("ceremony: %s: %w", filepath.Base(files[i+1]), err)
			}
			prev = p
		}
		return nil, len(chain), nil
	}
	srs, err := gmpc.VerifyPhase1(ci.Domain, beacon, chain...)
	if err != nil {
		return nil, 0, fmt.Errorf("ceremony: phase 1: %w", err)
	}
	return &srs, len(chain), nil
}

// CeremonyClosePhase1 verifies phase 1, seals it with the beacon (public
// randomness drawn after the last contribution), computes the Lagrange
// basis (a group FFT: minutes at 2^17) and initialises phase 2.
func CeremonyClosePhase1(ctx context.Context, dir string, spec *circuits.Spec, batch int, beacon []byte, progress Progress) error {
	return ceremonyClosePhase1(ctx, dir, specRef(spec, batch), beacon, progress)
}

func ceremonyClosePhase1(ctx context.Context, dir string, c circuitRef, beacon []byte, progress Progress) error {
	ci, err := readInfo(dir)
	if err != nil {
		return err
	}
	if err := c.check(ci); err != nil {
		return err
	}
	if phase1Closed(dir) {
		return errors.New("ceremony: phase 1 is already closed")
	}
	progress.report("verify phase 1", 0, 0)
	srs, _, err := verifyPhase1Chain(ctx, dir, ci, beacon)
	if err != nil {
		return err
	}
	progress.report("Lagrange basis (group FFT)", 0, 0)
	lag, err := lagrangeFromSRS(ctx, srs, int(ci.Domain))
	if err != nil {
		return err
	}
	r, err := c.compile()
	if err != nil {
		return err
	}
	progress.report("phase 2 init", 0, 0)
	p2, _, err := initPhase2(ctx, r, srs, lag, func(d, t int) { progress.report("phase 2 init", d, t) })
	if err != nil {
		return err
	}
	if err := writeObj(filepath.Join(dir, "phase2-0000.bin"), p2); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "phase1.beacon"), []byte(fmt.Sprintf("%x\n", beacon)), 0o644); err != nil {
		return err
	}
	// Written last: its presence marks phase 1 as closed.
	return savePhase1(filepath.Join(dir, "phase1.srs.d"), srs, lag, nil, nil)
}

// CeremonyVerify checks everything a participant can check: every phase-1
// contribution, the seal with the recorded beacon, the Lagrange basis (by a
// random linear combination, two multi-scalar multiplications per vector
// instead of an FFT), the phase-2 initialisation and every phase-2
// contribution. It returns the number of contributions per phase.
func CeremonyVerify(ctx context.Context, dir string, spec *circuits.Spec, batch int, progress Progress) (n1, n2 int, err error) {
	return ceremonyVerify(ctx, dir, specRef(spec, batch), progress)
}

func ceremonyVerify(ctx context.Context, dir string, c circuitRef, progress Progress) (n1, n2 int, err error) {
	ci, err := readInfo(dir)
	if err != nil {
		return 0, 0, err
	}
	if err := c.check(ci); err != nil {
		return 0, 0, err
	}
	if !phase1Closed(dir) {
		progress.report("verify phase 1", 0, 0)
		_, n1, err = verifyPhase1Chain(ctx, dir, ci, nil)
		return n1, 0, err
	}
	_, _, p2init, _, n1, err := verifiedPhase2Start(ctx, dir, ci, c, progress)
	if err != nil {
		return 0, 0, err
	}
	files, err := contributions(dir, 2)
	if err != nil {
		return 0, 0, err
	}
	prev := p2init
	for _, f := range files[1:] {
		progress.report("verify phase 2", 0, 0)
		p := new(gmpc.Phase2)
		if err := readObj(f, p); err != nil {
			return 0, 0, err
		}
		if err := prev.Verify(p); err != nil {
			return 0, 0, fmt.Errorf("ceremony: %s: %w", filepath.Base(f), err)
		}
		prev = p
	}
	return n1, len(files) - 1, nil
}

// verifiedPhase2Start re-derives the sealed SRS from the phase-1
// transcript and the recorded beacon, checks the stored Lagrange basis, and
// recomputes the phase-2 initialisation, which must equal phase2-0000.bin.
func verifiedPhase2Start(ctx context.Context, dir string, ci *CeremonyInfo, c circuitRef, progress Progress) (*gmpc.SrsCommons, *gmpc.Phase2Evaluations, *gmpc.Phase2, *cs.R1CS, int, error) {
	bb, err := os.ReadFile(filepath.Join(dir, "phase1.beacon"))
	if err != nil {
		return nil, nil, nil, nil, 0, fmt.Errorf("ceremony: %w", err)
	}
	beacon, err := hex.DecodeString(strings.TrimSpace(string(bb)))
	if err != nil {
		return nil, nil, nil, nil, 0, fmt.Errorf("ceremony: phase1.beacon: %w", err)
	}
	progress.report("verify phase 1", 0, 0)
	srs, n1, err := verifyPhase1Chain(ctx, dir, ci, beacon)
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	stored, lag, err := loadPhase1(filepath.Join(dir, "phase1.srs.d"))
	if err != nil {
		return nil, nil, nil, nil, 0, fmt.Errorf("ceremony: %w", err)
	}
	a, _ := encodeTo(srs)
	b, _ := encodeTo(stored)
	if !bytes.Equal(a, b) {
		return nil, nil, nil, nil, 0, errors.New("ceremony: the stored SRS is not the sealed phase 1")
	}
	progress.report("check Lagrange basis", 0, 0)
	if err := checkLagrange(srs, lag); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	r, err := c.compile()
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	progress.report("phase 2 init", 0, 0)
	p2, evals, err := initPhase2(ctx, r, srs, lag, nil)
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	var got gmpc.Phase2
	if err := readObj(filepath.Join(dir, "phase2-0000.bin"), &got); err != nil {
		return nil, nil, nil, nil, 0, err
	}
	x, _ := encodeTo(p2)
	y, _ := encodeTo(&got)
	if !bytes.Equal(x, y) {
		return nil, nil, nil, nil, 0, errors.New("ceremony: phase2-0000.bin is not the initialisation of this circuit")
	}
	return srs, evals, p2, r, n1, nil
}

// CeremonyFinalize verifies the whole ceremony, seals phase 2 with the
// beacon and returns the keys.
func CeremonyFinalize(ctx context.Context, dir string, spec *circuits.Spec, batch int, beacon []byte, progress Progress) (*zk.ProvingKey, error) {
	r, gpk, gvk, err := ceremonyFinalize(ctx, dir, specRef(spec, batch), beacon, progress)
	if err != nil {
		return nil, err
	}
	return zk.NewProvingKey(spec, batch, r, gpk, gvk)
}

func ceremonyFinalize(ctx context.Context, dir string, c circuitRef, beacon []byte, progress Progress) (*cs.R1CS, groth16.ProvingKey, groth16.VerifyingKey, error) {
	ci, err := readInfo(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := c.check(ci); err != nil {
		return nil, nil, nil, err
	}
	srs, evals, prev, r, _, err := verifiedPhase2Start(ctx, dir, ci, c, progress)
	if err != nil {
		return nil, nil, nil, err
	}
	files, err := contributions(dir, 2)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(files) < 2 {
		return nil, nil, nil, errors.New("ceremony: phase 2 has no contribution")
	}
	for _, f := range files[1:] {
		progress.report("verify phase 2", 0, 0)
		p := new(gmpc.Phase2)
		if err := readObj(f, p); err != nil {
			return nil, nil, nil, err
		}
		if err := prev.Verify(p); err != nil {
			return nil, nil, nil, fmt.Errorf("ceremony: %s: %w", filepath.Base(f), err)
		}
		prev = p
	}
	progress.report("seal", 0, 0)
	gpk, gvk := prev.Seal(srs, evals, beacon)
	if err := os.WriteFile(filepath.Join(dir, "phase2.beacon"), []byte(fmt.Sprintf("%x\n", beacon)), 0o644); err != nil {
		return nil, nil, nil, err
	}
	return r, gpk, gvk, nil
}

// checkLagrange verifies that lag is the Lagrange basis of srs without an
// FFT: for a random ρ, Σ_j ρ^j·[τ^j] = Σ_i c_i·[L_i(τ)] with
// c_i = (ρ^n - 1)/(ρ·ω^i - 1), since Σ_j ρ^j x^j = Σ_i c_i L_i(x) for
// every x on the domain (both sides are polynomials of degree < n). A wrong
// basis passes with probability at most n/p (Schwartz–Zippel in ρ).
func checkLagrange(srs *gmpc.SrsCommons, lag *lagrangeBasis) error {
	n := len(lag.Tau1)
	if len(lag.AlphaTau1) != n || len(lag.BetaTau1) != n || len(lag.Tau2) != n || len(srs.G2.Tau) != n {
		return errors.New("ceremony: Lagrange basis has the wrong size")
	}
	var rho fr.Element
	if _, err := rho.SetRandom(); err != nil {
		return err
	}
	pw := make([]fr.Element, n)
	pw[0].SetOne()
	for i := 1; i < n; i++ {
		pw[i].Mul(&pw[i-1], &rho)
	}
	d := fft.NewDomain(uint64(n))
	var rn, one fr.Element
	one.SetOne()
	rn.Exp(rho, big.NewInt(int64(n)))
	rn.Sub(&rn, &one)
	c := make([]fr.Element, n)
	var w fr.Element
	w.SetOne()
	for i := range c {
		c[i].Mul(&rho, &w)
		c[i].Sub(&c[i], &one)
		w.Mul(&w, &d.Generator)
	}
	c = fr.BatchInvert(c)
	for i := range c {
		c[i].Mul(&c[i], &rn)
	}
	cfg := ecc.MultiExpConfig{}
	check1 := func(mono, lagr []curve.G1Affine, what string) error {
		var a, b curve.G1Affine
		if _, err := a.MultiExp(mono[:n], pw, cfg); err != nil {
			return err
		}
		if _, err := b.MultiExp(lagr, c, cfg); err != nil {
			return err
		}
		if !a.Equal(&b) {
			return fmt.Errorf("ceremony: the Lagrange basis of %s is wrong", what)
		}
		return nil
	}
	if err := check1(srs.G1.Tau, lag.Tau1, "[τ]₁"); err != nil {
		return err
	}
	if err := check1(srs.G1.AlphaTau, lag.AlphaTau1, "[ατ]₁"); err != nil {
		return err
	}
	if err := check1(srs.G1.BetaTau, lag.BetaTau1, "[βτ]₁"); err != nil {
		return err
	}
	var a, b curve.G2Affine
	if _, err := a.MultiExp(srs.G2.Tau, pw, cfg); err != nil {
		return err
	}
	if _, err := b.MultiExp(lag.Tau2, c, cfg); err != nil {
		return err
	}
	if !a.Equal(&b) {
		return errors.New("ceremony: the Lagrange basis of [τ]₂ is wrong")
	}
	return nil
}
