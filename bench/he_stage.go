package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/model"
)

// EvaluationStageNames are the latencies of the encrypted network's stages,
// in order, as reported by he.Network.EvaluateTraced, prefixed "evaluate/".
func EvaluationStageNames() []string {
	out := make([]string, len(heStages))
	for i, s := range heStages {
		out[i] = "evaluate/" + s
	}
	return out
}

var heStages = []string{he.StageMatrix1, he.StageSum1, he.StageSquare, he.StageMatrix2, he.StageSum2, he.StageRescale, he.StageRerandomize}

// modelFor returns the model measured at a hidden size.
func (r *runner) modelFor(hidden int) (*model.Model, error) {
	if hidden == DefaultHidden {
		return r.def, nil
	}
	return randomModel(hidden, 1)
}

func (r *runner) addLatency(stage, name string, p Params, samples []float64) {
	if len(samples) == 0 {
		return
	}
	r.res.Latencies = append(r.res.Latencies, Latency{Stage: stage, Name: name, Params: p, Unit: "ms", Summary: Summarize(samples)})
}

func (r *runner) addSize(stage, name string, p Params, n int) {
	r.res.Sizes = append(r.res.Sizes, Size{Stage: stage, Name: name, Params: p, Bytes: int64(n)})
}

func (r *runner) addCount(stage, name string, p Params, n int) {
	r.res.Counts = append(r.res.Counts, Count{Stage: stage, Name: name, Params: p, Value: int64(n)})
}

// runHE measures the CKKS grid.
func (r *runner) runHE(ctx context.Context) error {
	s := r.s.HE
	var errs []error
	for _, logN := range s.LogN {
		for _, hidden := range s.Hidden {
			// A failing point must not hide the others: the default point
			// anchors the later stages.
			if err := r.heModel(ctx, logN, hidden); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				errs = append(errs, fmt.Errorf("LogN %d, hidden %d: %w", logN, hidden, err))
			}
		}
	}
	return errors.Join(errs...)
}

// heModel measures one (LogN, hidden) pair: compilation, keys, sizes and
// every (workers, images) point.
func (r *runner) heModel(ctx context.Context, logN, hidden int) error {
	s := r.s.HE
	m, err := r.modelFor(hidden)
	if err != nil {
		return err
	}
	kp := Params{LogN: logN, Hidden: hidden, Model: s.modelName(hidden)}
	p := he.DefaultParametersLiteral
	p.LogN = logN
	settings := he.DefaultEvaluationSettings
	base, err := he.NewParameters(p)
	if err != nil {
		return err
	}
	t0 := time.Now()
	net, err := base.Compile(m, settings)
	if err != nil {
		return err
	}
	r.addLatency(StageHE, "compile", Params{LogN: logN, Hidden: hidden, Workers: settings.Workers, Model: kp.Model}, []float64{ms(time.Since(t0))})
	r.tick(costCompile(logN), fmt.Sprintf("compile %v", kp))
	galEls := net.GaloisElements()

	// Client: key generation; server: decoding the uploaded bundle.
	var gen, load []float64
	var fix heFixture
	fix.ctx, fix.net = base, net
	for i := 0; i < s.KeygenReps; i++ {
		t0 := time.Now()
		sk := base.GenSecretKey()
		keys, err := sk.GenEvaluationKeys(galEls)
		if err != nil {
			return err
		}
		bundle, err := keys.MarshalBinary()
		if err != nil {
			return err
		}
		gen = append(gen, ms(time.Since(t0)))
		t1 := time.Now()
		skeys, err := base.UnmarshalEvaluationKeys(bundle, galEls)
		if err != nil {
			return err
		}
		load = append(load, ms(time.Since(t1)))
		fix.sk, fix.keys, fix.bundle = sk, skeys, bundle
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	r.addLatency(StageHE, "keygen", kp, gen)
	r.addLatency(StageHE, "load_keys", kp, load)
	r.addSize(StageHE, "evaluation_keys", kp, len(fix.bundle))
	r.addSize(StageHE, "server_key_memory", kp, fix.keys.MemoryBytes())
	r.addCount(StageHE, "rotation_keys", kp, len(galEls))
	r.tick(costKeygen(logN, s.KeygenReps), fmt.Sprintf("keygen %v", kp))
	if logN == he.DefaultParametersLiteral.LogN && hidden == DefaultHidden {
		f := fix
		r.defFix = &f
	}

	first := true
	for _, w := range s.Workers {
		sw := settings
		sw.Workers = w
		wnet, err := base.Compile(m, sw)
		if err != nil {
			return err
		}
		r.tick(costCompile(logN), fmt.Sprintf("compile %v workers=%d", kp, w))
		for _, img := range s.Images {
			pp := Params{LogN: logN, Hidden: hidden, Images: img, Workers: w, Model: kp.Model}
			in, out, err := r.hePoint(ctx, m, &fix, wnet, pp)
			if err != nil {
				return fmt.Errorf("%v: %w", pp, err)
			}
			if first {
				r.addSize(StageHE, "input_ciphertext", kp, in)
				r.addSize(StageHE, "output_ciphertext", kp, out)
				first = false
			}
			r.tick(costHEPoint(logN, w, s.Reps), fmt.Sprintf("he %v", pp))
		}
	}
	return nil
}

// hePoint times encryption, evaluation (per stage) and decryption at one
// grid point, after one untimed warm-up, and checks the decrypted scores
// against the float model. It returns the wire sizes of the input and
// output ciphertexts.
func (r *runner) hePoint(ctx context.Context, m *model.Model, fix *heFixture, net *he.Network, pp Params) (inBytes, outBytes int, err error) {
	s := r.s.HE
	layout := net.Layout()
	imgs := r.images(0, pp.Images)
	var enc, dec, eval, e2e []float64
	stageMS := map[string][]float64{}
	for rep := 0; rep <= s.Reps; rep++ {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		// Client: encrypt and encode.
		t0 := time.Now()
		ct, err := fix.sk.Encrypt(layout, imgs)
		if err != nil {
			return 0, 0, err
		}
		wire, err := ct.MarshalBinary()
		if err != nil {
			return 0, 0, err
		}
		tEnc := time.Since(t0)
		// Server: decode, evaluate, encode.
		t1 := time.Now()
		in, err := fix.ctx.UnmarshalCiphertext(wire)
		if err != nil {
			return 0, 0, err
		}
		cur := map[string]float64{}
		t2 := time.Now()
		out, err := net.EvaluateTraced(ctx, in, fix.keys, func(stage string, d time.Duration) { cur[stage] = ms(d) })
		if err != nil {
			return 0, 0, err
		}
		tEval := time.Since(t2)
		ow, err := out.MarshalBinary()
		if err != nil {
			return 0, 0, err
		}
		tServer := time.Since(t1)
		// Client: decode and decrypt.
		t3 := time.Now()
		back, err := fix.ctx.UnmarshalCiphertext(ow)
		if err != nil {
			return 0, 0, err
		}
		scores, err := fix.sk.Decrypt(layout, back)
		if err != nil {
			return 0, 0, err
		}
		tDec := time.Since(t3)
		if rep == 0 {
			// Warm-up: check the result instead of timing it.
			if err := checkScores(m, imgs, scores); err != nil {
				return 0, 0, err
			}
			inBytes, outBytes = len(wire), len(ow)
			continue
		}
		enc = append(enc, ms(tEnc))
		eval = append(eval, ms(tEval))
		dec = append(dec, ms(tDec))
		e2e = append(e2e, ms(tEnc+tServer+tDec))
		for _, st := range heStages {
			stageMS[st] = append(stageMS[st], cur[st])
		}
	}
	r.addLatency(StageHE, "encrypt", pp, enc)
	r.addLatency(StageHE, "evaluate", pp, eval)
	for _, st := range heStages {
		r.addLatency(StageHE, "evaluate/"+st, pp, stageMS[st])
	}
	r.addLatency(StageHE, "decrypt", pp, dec)
	r.addLatency(StageHE, "end_to_end", pp, e2e)
	per := make([]float64, len(e2e))
	for i, v := range e2e {
		per[i] = v / float64(pp.Images)
	}
	r.addLatency(StageHE, "end_to_end_per_image", pp, per)
	return inBytes, outBytes, nil
}

// checkScores compares decrypted scores with the float model's: the
// encrypted network must compute the same function, or its timings mean
// nothing.
func checkScores(m *model.Model, imgs [][]uint8, scores [][]float64) error {
	f := m.Dequantize()
	for i, img := range imgs {
		want := f.Forward(model.PixelsToInput(img))
		var peak, worst float64
		for j, w := range want {
			peak = math.Max(peak, math.Abs(w))
			worst = math.Max(worst, math.Abs(scores[i][j]-w))
		}
		// The CKKS error of the default model is about 0.1 on scores up
		// to about 10 (he's own test allows 0.25); garbage (a wrong
		// diagonal, an overflow) is far larger.
		if worst > 0.25+0.03*peak {
			return fmt.Errorf("image %d: decrypted scores differ from the plaintext model's by %.3g (largest score %.3g)", i, worst, peak)
		}
	}
	return nil
}
