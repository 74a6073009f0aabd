package heverify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math"
	"strings"
	"sync"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
)

// exchange is one verifiable request as the client and the server saw it:
// keys from a seed, an input with the real image in block 0 and challenges
// in blocks 1..3, the server's output, and the committed model's outputs
// on the challenges (what a proof states).
type exchange struct {
	params     *he.Parameters
	m          *model.Model
	spec       *circuits.Spec
	honest     *he.Network
	seed       he.SessionSeed
	sk         *he.SecretKey
	keys       *he.EvaluationKeys // as the server decoded them
	bundle     []byte
	layout     he.Layout
	images     [][]uint8
	positions  []uint32
	challenges [][]byte
	proven     [][]int64
	input      []byte
	output     []byte
}

var testSet = sync.OnceValues(func() (*dataset.Set, error) {
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	return dataset.LoadTest(dir)
})

var smallWorld = sync.OnceValues(func() (*exchange, error) {
	m, err := testmodels.Small()
	if err != nil {
		return nil, err
	}
	return newWorld(m)
})

func newWorld(m *model.Model) (*exchange, error) {
	params, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		return nil, err
	}
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	net, err := params.Compile(m, he.DefaultEvaluationSettings)
	if err != nil {
		return nil, err
	}
	x := &exchange{params: params, m: m, spec: spec, honest: net, layout: net.Layout(), seed: he.SessionSeed{42}}
	sk, keys, err := params.KeysFromSeed(x.seed, net.GaloisElements())
	if err != nil {
		return nil, err
	}
	if x.bundle, err = keys.MarshalBinary(); err != nil {
		return nil, err
	}
	if x.keys, err = params.UnmarshalEvaluationKeys(x.bundle, net.GaloisElements()); err != nil {
		return nil, err
	}
	x.sk = sk
	return x, nil
}

// request encrypts test images first.. (block 0 real, 1..3 challenges) and
// has evaluator (the honest network when nil) answer.
func (w *exchange) request(t testing.TB, first int, evaluator *he.Network) *exchange {
	t.Helper()
	set, err := testSet()
	if err != nil {
		t.Fatal(err)
	}
	x := *w
	x.images = make([][]uint8, x.layout.Blocks)
	x.positions, x.challenges, x.proven = nil, nil, nil
	for b := 0; b < 4; b++ {
		img := set.Images[first+b][:]
		x.images[b] = img
		if b > 0 {
			x.positions = append(x.positions, uint32(b))
			x.challenges = append(x.challenges, img)
			y, err := x.m.Forward(img)
			if err != nil {
				t.Fatal(err)
			}
			x.proven = append(x.proven, y)
		}
	}
	ct, err := x.sk.Encrypt(x.layout, x.images)
	if err != nil {
		t.Fatal(err)
	}
	x.answer(t, ct, evaluator)
	return &x
}

func (x *exchange) answer(t testing.TB, ct *he.Ciphertext, evaluator *he.Network) {
	t.Helper()
	var err error
	if x.input, err = ct.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	in, err := x.params.UnmarshalCiphertext(x.input) // as the server reads it
	if err != nil {
		t.Fatal(err)
	}
	if evaluator == nil {
		evaluator = x.honest
	}
	out, err := evaluator.Evaluate(context.Background(), in, x.keys)
	if err != nil {
		t.Fatal(err)
	}
	if x.output, err = out.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
}

func (x *exchange) evidence() *ledger.DisputeEvidence {
	lit, _ := x.params.Literal().MarshalBinary()
	d := sha256.Sum256(x.bundle)
	return &ledger.DisputeEvidence{
		Spec: x.spec.Canonical(), KeysDigest: d[:], Seed: bytes.Clone(x.seed[:]), Parameters: lit, GaloisElements: x.honest.GaloisElements(),
		Input: x.input, Output: x.output, NumBlocks: 4, Positions: x.positions, Challenges: x.challenges, Proven: x.proven,
		OutputFrac: x.spec.OutputFrac(), Tolerance: x.spec.Tolerance,
	}
}

func world(t testing.TB) *exchange {
	t.Helper()
	w, err := smallWorld()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func wantOutcome(t *testing.T, e *ledger.DisputeEvidence, want ledgerv1.Code) string {
	t.Helper()
	code, detail := New().CheckDispute(e)
	if code != want {
		t.Fatalf("outcome %v (%s), want %v", code, detail, want)
	}
	return detail
}

// An honest server's answer survives a dispute: it is no fraud.
func TestHonestAnswerIsNotFraud(t *testing.T) {
	x := world(t).request(t, 0, nil)
	d := wantOutcome(t, x.evidence(), ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST)
	t.Log(d)
	// And the outcome is a function of the evidence: again, the same.
	code, d2 := New().CheckDispute(x.evidence())
	if code != ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST || d2 != d {
		t.Fatalf("a second check gave %v (%s)", code, d2)
	}
}

// Another model on a challenge block is proven fraud; on the real block
// only, it is not visible (the 1/k the protocol concedes).
func TestAnotherModelOnAChallengeBlockIsFraud(t *testing.T) {
	w := world(t)
	other := testmodels.Perturbed(w.m, 40)
	perBlock := func(cheat int) *he.Network {
		ms := make([]*model.Model, w.layout.Blocks)
		for b := range ms {
			ms[b] = w.m
		}
		ms[cheat] = other
		n, err := w.params.CompilePerBlock(ms, he.DefaultEvaluationSettings)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	x := w.request(t, 10, perBlock(2))
	d := wantOutcome(t, x.evidence(), ledgerv1.Code_CODE_OK)
	if !strings.Contains(d, "block 2") {
		t.Fatalf("the fraud was found elsewhere: %s", d)
	}
	t.Log(d)
	y := w.request(t, 10, perBlock(0))
	wantOutcome(t, y.evidence(), ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST)
	// Proven outputs that are not the model's (the server proved, but the
	// client disputes a row that a lying ledger would report): the honest
	// output then differs from them.
	z := w.request(t, 10, nil)
	e := z.evidence()
	e.Proven = [][]int64{append([]int64(nil), e.Proven[0]...), e.Proven[1], e.Proven[2]}
	e.Proven[0][3] += 4 * e.Tolerance
	wantOutcome(t, e, ledgerv1.Code_CODE_OK)
}

func TestKeysThatDoNotMatchAreNoEvidence(t *testing.T) {
	x := world(t).request(t, 20, nil)
	e := x.evidence()
	e.Seed[0] ^= 1
	wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH)
	e = x.evidence()
	e.GaloisElements = e.GaloisElements[1:]
	wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH)
	e = x.evidence()
	e.GaloisElements = append(e.GaloisElements, 2) // not a Galois element
	wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH)
	// Other parameters derive another bundle (its header names them).
	lit := he.DefaultParametersLiteral
	lit.LogInputScale = 30
	e = x.evidence()
	e.Parameters, _ = lit.MarshalBinary()
	wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH)
}

// A client cannot frame an honest server: the input must decrypt to what
// it revealed, everywhere, within δ.
func TestFramingIsRefused(t *testing.T) {
	w := world(t)
	set, _ := testSet()
	// 1. The reveal names another image than the block holds: the honest
	// answer then differs from the proof of the revealed image, but the
	// input gives the client away.
	x := w.request(t, 30, nil)
	e := x.evidence()
	e.Challenges = [][]byte{set.Images[99][:], e.Challenges[1], e.Challenges[2]}
	y, _ := x.m.Forward(set.Images[99][:])
	e.Proven = [][]int64{y, e.Proven[1], e.Proven[2]}
	wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_FRAMING)

	// 2. Inputs that are not grey levels where the reveal says: garbage in
	// a padding slot, a challenge pixel off by a sixteenth of a grey level,
	// a value in a block past k.
	base := make([]float64, w.params.Literal().Slots())
	for b := 0; b < 4; b++ {
		for p, px := range set.Images[30+b] {
			base[b*w.layout.BlockSize+w.layout.InputOffset+p] = float64(px) / 256
		}
	}
	for name, tamper := range map[string]func(v []float64){
		"padding slot":            func(v []float64) { v[1*w.layout.BlockSize+1] = 1.0 / 1024 },
		"a sixteenth grey level":  func(v []float64) { v[2*w.layout.BlockSize+w.layout.InputOffset+300] += 1.0 / 4096 },
		"a block past k":          func(v []float64) { v[6*w.layout.BlockSize+w.layout.InputOffset] = 0.5 },
		"real image off the grid": func(v []float64) { v[w.layout.InputOffset+400] += 0.5 / 256 },
	} {
		v := append([]float64(nil), base...)
		tamper(v)
		ct, err := w.sk.EncryptValues(v)
		if err != nil {
			t.Fatal(err)
		}
		z := *x
		z.answer(t, ct, nil)
		t.Run(name, func(t *testing.T) { wantOutcome(t, z.evidence(), ledgerv1.Code_CODE_DISPUTE_FRAMING) })
	}
	// Within δ/4 of the grid everywhere is a well-formed input: the check
	// is about the values, not the bytes.
	v := append([]float64(nil), base...)
	for i := range v {
		v[i] += math.Ldexp(1, -LogDelta-2) * float64(i%3-1)
	}
	ct, _ := w.sk.EncryptValues(v)
	z := *x
	z.answer(t, ct, nil)
	wantOutcome(t, z.evidence(), ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST)

	// 3. An input that is not a fresh encryption (an evaluation result, at
	// level 0) is no request an honest server evaluates.
	bad := x.evidence()
	bad.Input = x.output
	wantOutcome(t, bad, ledgerv1.Code_CODE_DISPUTE_FRAMING)
}

func TestAnOutputThatIsNoCiphertextIsFraud(t *testing.T) {
	x := world(t).request(t, 40, nil)
	e := x.evidence()
	e.Output = []byte("the server signed these bytes as its answer")
	wantOutcome(t, e, ledgerv1.Code_CODE_OK)
}

func TestBadEvidence(t *testing.T) {
	x := world(t).request(t, 50, nil)
	for name, f := range map[string]func(*ledger.DisputeEvidence){
		"parameters": func(e *ledger.DisputeEvidence) { e.Parameters = []byte("VPL1 garbage") },
		"LogN 15": func(e *ledger.DisputeEvidence) {
			l := he.DefaultParametersLiteral
			l.LogN = 15
			e.Parameters, _ = l.MarshalBinary()
		},
		"spec":               func(e *ledger.DisputeEvidence) { e.Spec = []byte("nope") },
		"short seed":         func(e *ledger.DisputeEvidence) { e.Seed = e.Seed[:31] },
		"input truncated":    func(e *ledger.DisputeEvidence) { e.Input = e.Input[:100] },
		"output fraction":    func(e *ledger.DisputeEvidence) { e.OutputFrac = 60 },
		"rows per challenge": func(e *ledger.DisputeEvidence) { e.Proven = [][]int64{make([]int64, 4096), e.Proven[1], e.Proven[2]} },
	} {
		t.Run(name, func(t *testing.T) {
			e := x.evidence()
			f(e)
			wantOutcome(t, e, ledgerv1.Code_CODE_DISPUTE_BAD_EVIDENCE)
		})
	}
}

// The honest side of δ: fresh encryptions decode far closer to their
// values than δ, so an honest client's input is always well-formed.
func TestHonestInputsAreWellFormed(t *testing.T) {
	w := world(t)
	set, _ := testSet()
	worst := 0.0
	for i := 0; i < 6; i++ {
		imgs := make([][]uint8, w.layout.Blocks)
		for b := range imgs {
			imgs[b] = set.Images[100+8*i+b][:]
		}
		ct, _ := w.sk.Encrypt(w.layout, imgs)
		fx, err := w.sk.DecryptFixed(ct, InputFrac)
		if err != nil {
			t.Fatal(err)
		}
		for b, img := range imgs {
			for s := 0; s < w.layout.BlockSize; s++ {
				want := 0.0
				if p := s - w.layout.InputOffset; p >= 0 && p < len(img) {
					want = float64(img[p]) / 256
				}
				worst = math.Max(worst, math.Abs(math.Ldexp(float64(fx.Values[b*w.layout.BlockSize+s]), -InputFrac)-want))
			}
		}
	}
	delta := math.Ldexp(1, -LogDelta)
	t.Logf("largest slot error of 6 fresh encryptions: %.3g = 2^%.1f (δ = 2^-%d, %.0f× larger)", worst, math.Log2(worst), LogDelta, delta/worst)
	if worst > delta/4 {
		t.Fatalf("a fresh encryption is %.3g from its values, δ/4 = %.3g", worst, delta/4)
	}
}

// The framing side of δ: a perturbation of at most δ on every pixel, in
// the worst direction, moves a committed model's scores by far less than
// the tolerance. First order: |Δy_r| ≤ δ·Σ_p |∂y_r/∂x_p|, with
// ∂y/∂x = W2·diag(2h)·W1 at the image; second order: δ²·Σ_j |W2_rj|·(Σ_p
// |W1_jp|)². (Slots outside the pixels meet weights that encode zero, whose
// encoding error, about 2^-13, times δ is negligible.)
func TestAllowedInputPerturbationIsHarmless(t *testing.T) {
	for _, name := range []string{"default", "compact"} {
		t.Run(name, func(t *testing.T) {
			f, err := model.Committed(name)
			if err != nil {
				t.Fatal(err)
			}
			perturbationIsHarmless(t, f)
		})
	}
}

func perturbationIsHarmless(t *testing.T, f *model.File) {
	spec, err := circuits.SpecOf(f.Model)
	if err != nil {
		t.Fatal(err)
	}
	first, last, err := he.Fold(f.Model)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := testSet()
	delta := math.Ldexp(1, -LogDelta)
	tol := math.Ldexp(float64(spec.Tolerance), -spec.OutputFrac()) // real units
	rowL1 := make([]float64, first.Rows)
	for j := range rowL1 {
		for p := 0; p < first.Cols; p++ {
			rowL1[j] += math.Abs(first.W[j*first.Cols+p])
		}
	}
	worst := 0.0
	for i := 0; i < 50; i++ {
		img := set.Images[200+i]
		h := make([]float64, first.Rows)
		for j := range h {
			h[j] = first.B[j]
			for p, px := range img {
				h[j] += first.W[j*first.Cols+p] * float64(px) / 256
			}
		}
		for r := 0; r < last.Rows; r++ {
			var first1, second float64
			for p := 0; p < first.Cols; p++ {
				var g float64
				for j := range h {
					g += last.W[r*last.Cols+j] * 2 * h[j] * first.W[j*first.Cols+p]
				}
				first1 += math.Abs(g)
			}
			for j := range h {
				second += math.Abs(last.W[r*last.Cols+j]) * rowL1[j] * rowL1[j]
			}
			worst = math.Max(worst, delta*first1+delta*delta*second)
		}
	}
	t.Logf("largest score change from a δ = 2^-%d perturbation of every pixel: %.4f (tolerance %.3f, measured CKKS error up to 0.22)", LogDelta, worst, tol)
	if worst > tol/20 {
		t.Fatalf("a perturbation within δ can move a score by %.4f, more than a twentieth of the tolerance %.3f", worst, tol)
	}
}

// BenchmarkCheckDispute is one node's whole check of a dispute at the
// default parameters and model: the key bundle rebuilt from the seed and
// hashed, the input and output decrypted and compared. Target: ≤ 1 s.
func BenchmarkCheckDispute(b *testing.B) {
	f, err := model.Default()
	if err != nil {
		b.Fatal(err)
	}
	w, err := newWorld(f.Model)
	if err != nil {
		b.Fatal(err)
	}
	x := w.request(b, 0, nil)
	e := x.evidence()
	v := New()
	b.ResetTimer()
	for b.Loop() {
		if code, d := v.CheckDispute(e); code != ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST {
			b.Fatal(code, d)
		}
	}
}
