package bench

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
)

// sealFiles is the peer's source: a small Node.js script and its pinned
// dependencies (node-seal 7.0.0, the Node.js 22 binary package).
//
//go:embed peer/seal/peer.mjs peer/seal/package.json peer/seal/package-lock.json
var sealFiles embed.FS

// PeerResult is the side-by-side run of another HE library on Veil's
// network shape.
type PeerResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Library and Runtime name what ran (e.g. "node-seal 7.0.0 (Microsoft
	// SEAL 4.1.2, WebAssembly)", "Node.js v22.23.3").
	Library    string         `json:"library,omitempty"`
	Runtime    string         `json:"runtime,omitempty"`
	Parameters PeerParameters `json:"parameters"`
	// Differences lists how the peer's computation differs from Veil's.
	Differences []string  `json:"differences,omitempty"`
	Latencies   []Latency `json:"latencies,omitempty"`
	Sizes       []Size    `json:"sizes,omitempty"`
	Counts      []Count   `json:"counts,omitempty"`
	// Agreement is the fraction of images whose decrypted class equals the
	// float model's; MaxAbsError the largest score error.
	Agreement   float64 `json:"agreement"`
	MaxAbsError float64 `json:"max_abs_error"`
	// Ratios are peer / Veil medians measured in the same run.
	Ratios []Ratio `json:"ratios,omitempty"`
}

// PeerParameters are the peer's CKKS parameters.
type PeerParameters struct {
	Scheme    string `json:"scheme"`
	LogN      int    `json:"log_n"`
	LogQ      []int  `json:"log_q"`
	LogP      []int  `json:"log_p"`
	Slots     int    `json:"slots"`
	BlockSize int    `json:"block_size"`
	Blocks    int    `json:"blocks"`
	// BabySteps and GiantSteps of the two matrix products.
	BabySteps  []int `json:"baby_steps"`
	GiantSteps []int `json:"giant_steps"`
}

// SealDir is where `--install-peer` puts the SEAL peer.
func SealDir(dataDir string) string { return filepath.Join(dataDir, "peers", "seal") }

// sealNode returns the installed Node.js binary, or an error saying how to
// install the peer.
func sealNode(dir string) (string, error) {
	node := filepath.Join(dir, "node_modules", ".bin", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-seal", "package.json")); err != nil {
		return "", fmt.Errorf("the SEAL peer is not installed in %s (install it with `veil bench --peer seal --install-peer`, or bench/peer/seal/install.sh; it needs npm and the npm registry)", dir)
	}
	if _, err := os.Stat(node); err != nil {
		return "", fmt.Errorf("the SEAL peer in %s has no Node.js binary (%v): reinstall it with `veil bench --peer seal --install-peer`", dir, err)
	}
	return node, nil
}

// InstallSeal installs the SEAL peer into SealDir(dataDir): it writes the
// embedded script, package.json and package-lock.json, and runs `npm ci`,
// which fetches node-seal and a Node.js 22 binary from the npm registry.
func InstallSeal(ctx context.Context, dataDir string, log io.Writer) (string, error) {
	if dataDir == "" {
		return "", errors.New("install the SEAL peer: no data directory")
	}
	dir := SealDir(dataDir)
	if err := writeSealFiles(dir); err != nil {
		return "", err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("install the SEAL peer: npm not found (install Node.js with npm; the peer runs on the Node.js 22 binary that npm fetches)")
	}
	if log == nil {
		log = io.Discard
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install the SEAL peer: npm ci in %s: %w", dir, err)
	}
	node, err := sealNode(dir)
	if err != nil {
		return "", err
	}
	v, err := nodeVersion(ctx, node)
	if err != nil {
		return "", err
	}
	if major(v) < 22 {
		return "", fmt.Errorf("install the SEAL peer: %s is Node.js %s, node-seal needs 22 or later", node, v)
	}
	return dir, nil
}

func writeSealFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("SEAL peer: %w", err)
	}
	for _, name := range []string{"peer.mjs", "package.json", "package-lock.json"} {
		b, err := sealFiles.ReadFile("peer/seal/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("SEAL peer: %w", err)
		}
	}
	return nil
}

func nodeVersion(ctx context.Context, node string) (string, error) {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", node, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func major(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	return n
}

// sealInput is what peer.mjs reads.
type sealInput struct {
	Reps                  int         `json:"reps"`
	KeygenReps            int         `json:"keygenReps"`
	LogN                  int         `json:"logN"`
	LogQ                  []int       `json:"logQ"`
	LogP                  []int       `json:"logP"`
	BlockSize             int         `json:"blockSize"`
	InputScaleBits        int         `json:"inputScaleBits"`
	WeightScaleBits       int         `json:"weightScaleBits"`
	OutputWeightScaleBits int         `json:"outputWeightScaleBits"`
	M1                    int         `json:"M1"`
	M2                    int         `json:"M2"`
	N1First               int         `json:"n1First"`
	N1Last                int         `json:"n1Last"`
	First                 affine      `json:"first"`
	Last                  affine      `json:"last"`
	Images                [][]int     `json:"images"`
	Expected              [][]float64 `json:"expected"`
}

// sealOutput is what peer.mjs writes.
type sealOutput struct {
	Node         string               `json:"node"`
	NodeSeal     string               `json:"node_seal"`
	Slots        int                  `json:"slots"`
	Blocks       int                  `json:"blocks"`
	Images       int                  `json:"images"`
	RotationKeys int                  `json:"rotation_keys"`
	BabySteps    []int                `json:"baby_steps"`
	GiantSteps   []int                `json:"giant_steps"`
	Timings      map[string][]float64 `json:"timings"`
	Sizes        map[string]int       `json:"sizes"`
	MaxAbsError  float64              `json:"max_abs_error"`
	Agreement    float64              `json:"agreement"`
}

func (r *runner) costPeer() float64 { return 15 + float64(r.s.Peer.Reps)*1.2 }

// runPeer runs Microsoft SEAL on the default model's network, side by side
// with this run's Veil numbers.
func (r *runner) runPeer(ctx context.Context) error {
	res := &PeerResult{Name: "seal", Status: StatusSkipped}
	r.res.Peer = res
	err := r.runSeal(ctx, res)
	r.tick(r.costPeer(), "peer seal")
	var sk errSkip
	switch {
	case errors.As(err, &sk):
		res.Status, res.Reason = StatusSkipped, sk.reason
	case err != nil:
		res.Status, res.Reason = StatusFailed, err.Error()
	default:
		res.Status = StatusOK
	}
	return err
}

func (r *runner) runSeal(ctx context.Context, res *PeerResult) error {
	if r.opt.DataDir == "" {
		return skip("no data directory to find the SEAL peer in")
	}
	dir := SealDir(r.opt.DataDir)
	node, err := sealNode(dir)
	if err != nil {
		return skip("%v", err)
	}
	v, err := nodeVersion(ctx, node)
	if err != nil {
		return err
	}
	if major(v) < 22 {
		return skip("the SEAL peer's Node.js is %s; node-seal needs 22 or later (reinstall with --install-peer)", v)
	}
	// Keep the installed script in step with this binary's.
	if err := writeSealFiles(dir); err != nil {
		return err
	}
	p, settings := he.DefaultParametersLiteral, he.DefaultEvaluationSettings
	first, last, err := foldModel(r.def)
	if err != nil {
		return err
	}
	in := sealInput{
		Reps: r.s.Peer.Reps, KeygenReps: max(1, min(3, r.s.HE.KeygenReps)),
		LogN: p.LogN, LogQ: p.LogQ, LogP: p.LogP, BlockSize: p.BlockSize,
		InputScaleBits: p.LogInputScale, WeightScaleBits: settings.LogWeightScale, OutputWeightScaleBits: settings.LogOutputWeightScale,
		M1: nextPow2(first.Rows), M2: nextPow2(last.Rows), N1First: 16, N1Last: 8,
		First: first, Last: last,
	}
	blocks := (1 << (p.LogN - 1)) / p.BlockSize
	f := r.def.Dequantize()
	for _, img := range r.images(0, blocks) {
		px := make([]int, len(img))
		for i, v := range img {
			px[i] = int(v)
		}
		in.Images = append(in.Images, px)
		in.Expected = append(in.Expected, f.Forward(model.PixelsToInput(img)))
	}
	tmp, err := os.CreateTemp("", "veil-bench-seal-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := json.NewEncoder(tmp).Encode(in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "peer.mjs"), tmp.Name())
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r.logf("peer: running Microsoft SEAL (node-seal, %s) on the same network...", v)
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 600 {
			msg = "..." + msg[len(msg)-600:]
		}
		return fmt.Errorf("SEAL peer: %w: %s", err, msg)
	}
	r.logf("peer: SEAL run took %s", time.Since(t0).Round(time.Second))
	var out sealOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return fmt.Errorf("SEAL peer output: %w", err)
	}
	res.Library = fmt.Sprintf("node-seal %s (Microsoft SEAL 4.1.2, WebAssembly)", out.NodeSeal)
	res.Runtime = "Node.js " + out.Node
	res.Parameters = PeerParameters{
		Scheme: "CKKS, standard ring (complex slots)", LogN: p.LogN, LogQ: p.LogQ, LogP: p.LogP,
		Slots: out.Slots, BlockSize: p.BlockSize, Blocks: out.Blocks, BabySteps: out.BabySteps, GiantSteps: out.GiantSteps,
	}
	res.Differences = []string{
		fmt.Sprintf("SEAL has no conjugate-invariant ring: N = 2^%d gives %d complex slots (real parts used), so a ciphertext holds %d image blocks where Veil's holds %d", p.LogN, out.Slots, out.Blocks, p.Blocks()),
		fmt.Sprintf("same modulus chain (Q = %v bits, P = %v bits), same scales (2^%d input, 2^%d and 2^%d weights), same single rescale after the square (the last matrix at level 0)", p.LogQ, p.LogP, p.LogInputScale, settings.LogWeightScale, settings.LogOutputWeightScale),
		"same diagonal method and baby-step giant-step split (16 baby steps for the first matrix, 8 for the last), but node-seal exposes no hoisted rotations: every baby step is a full key switch",
		"single-threaded WebAssembly (Node.js); compare with Veil's workers=1 points for one core",
		"re-randomisation adds a fresh public-key encryption of zero but no flooding noise (SEAL has no call for it)",
		"keys and ciphertexts serialised without compression (seeded where SEAL allows); Veil packs coefficients to the modulus width",
	}
	pp := Params{LogN: p.LogN, Hidden: DefaultHidden, Images: out.Images, Workers: 1, Model: "default"}
	for name, xs := range out.Timings {
		res.Latencies = append(res.Latencies, Latency{Stage: StagePeer, Name: name, Params: pp, Unit: "ms", Summary: stats.Summarize(xs)})
	}
	sortLatencies(res.Latencies)
	for _, name := range []string{"evaluation_keys", "galois_keys", "galois_keys_expanded", "galois_keys_zstd", "input_ciphertext", "output_ciphertext"} {
		if b, ok := out.Sizes[name]; ok {
			res.Sizes = append(res.Sizes, Size{Stage: StagePeer, Name: name, Params: Params{LogN: p.LogN, Model: "default"}, Bytes: int64(b)})
		}
	}
	res.Counts = append(res.Counts, Count{Stage: StagePeer, Name: "rotation_keys", Params: Params{LogN: p.LogN, Model: "default"}, Value: int64(out.RotationKeys)})
	res.Agreement, res.MaxAbsError = out.Agreement, out.MaxAbsError
	if out.MaxAbsError > 0.05 {
		return fmt.Errorf("SEAL peer's scores differ from the float model's by %.3g: it does not compute the same function", out.MaxAbsError)
	}
	r.peerRatios(res, out.Images)
	return nil
}

// peerRatios divides the peer's medians by Veil's from the same run.
func (r *runner) peerRatios(res *PeerResult, peerImages int) {
	peer := func(name string) (Latency, bool) {
		for _, l := range res.Latencies {
			if l.Name == name {
				return l, true
			}
		}
		return Latency{}, false
	}
	veilImages := 1
	for _, img := range r.s.HE.Images {
		if img == peerImages {
			veilImages = img
		}
	}
	for _, w := range r.s.HE.Workers {
		vp := Params{LogN: he.DefaultParametersLiteral.LogN, Hidden: DefaultHidden, Images: veilImages, Workers: w, Model: "default"}
		for _, name := range []string{"evaluate", "end_to_end", "encrypt", "decrypt"} {
			pl, ok1 := peer(name)
			vl, ok2 := r.res.LatencyOf(StageHE, name, vp)
			if ok1 && ok2 {
				res.Ratios = append(res.Ratios, Ratio{
					Name:        fmt.Sprintf("seal_over_veil_%s_workers%d", name, w),
					Numerator:   fmt.Sprintf("SEAL %s, %d images per ciphertext (median %.2f ms)", name, peerImages, pl.Median),
					Denominator: fmt.Sprintf("Veil he/%s %v (median %.2f ms)", name, vp, vl.Median),
					Value:       pl.Median / vl.Median,
				})
			}
		}
	}
	kp := Params{LogN: he.DefaultParametersLiteral.LogN, Hidden: DefaultHidden, Model: "default"}
	if pl, ok := peer("keygen"); ok {
		if vl, ok := r.res.LatencyOf(StageHE, "keygen", kp); ok {
			res.Ratios = append(res.Ratios, Ratio{Name: "seal_over_veil_keygen", Numerator: fmt.Sprintf("SEAL keygen (median %.1f ms)", pl.Median), Denominator: fmt.Sprintf("Veil he/keygen %v (median %.1f ms)", kp, vl.Median), Value: pl.Median / vl.Median})
		}
	}
	// Per image, each library packing as many images as its ciphertext holds.
	if pl, ok := peer("end_to_end"); ok {
		full := defaultPoint(maxInt(r.s.HE.Images))
		if vl, ok := r.res.LatencyOf(StageHE, "end_to_end_per_image", full); ok {
			per := pl.Median / float64(peerImages)
			res.Ratios = append(res.Ratios, Ratio{Name: "seal_over_veil_end_to_end_per_image", Numerator: fmt.Sprintf("SEAL end_to_end / %d images (%.2f ms)", peerImages, per), Denominator: fmt.Sprintf("Veil he/end_to_end_per_image %v (median %.2f ms)", full, vl.Median), Value: per / vl.Median})
		}
	}
	for _, pair := range [][2]string{{"evaluation_keys", "evaluation_keys"}, {"input_ciphertext", "input_ciphertext"}, {"output_ciphertext", "output_ciphertext"}} {
		var ps Size
		for _, s := range res.Sizes {
			if s.Name == pair[0] {
				ps = s
			}
		}
		if vs, ok := r.res.SizeOf(StageHE, pair[1], kp); ok && ps.Bytes > 0 {
			res.Ratios = append(res.Ratios, Ratio{Name: "seal_over_veil_size_" + pair[0], Numerator: fmt.Sprintf("SEAL %s (%d bytes)", pair[0], ps.Bytes), Denominator: fmt.Sprintf("Veil he/%s (%d bytes)", pair[1], vs.Bytes), Value: float64(ps.Bytes) / float64(vs.Bytes)})
		}
	}
}
