package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
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
	r.res.Latencies = append(r.res.Latencies, Latency{Stage: stage, Name: name, Params: p, Unit: "ms", Summary: stats.Summarize(samples)})
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
	r.addLatency(StageHE, "compile", Params{LogN: logN, Hidden: hidden, Workers: settings.Workers, Model: kp.Model}, []float64{stats.Milliseconds(time.Since(t0))})
	r.tick(costCompile(logN), fmt.Sprintf("compile %v", kp))
	galEls := net.GaloisElements()

	// Client: key generation; server: decoding the uploaded bundle.
	var gen, load []float64
	var fix *he.LocalSession
	for i := 0; i < s.KeygenReps; i++ {
		if fix, err = he.NewLocalSession(net); err != nil {
			return err
		}
		gen = append(gen, stats.Milliseconds(fix.KeyGen))
		load = append(load, stats.Milliseconds(fix.KeyLoad))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	r.addLatency(StageHE, "keygen", kp, gen)
	r.addLatency(StageHE, "load_keys", kp, load)
	r.addSize(StageHE, "evaluation_keys", kp, len(fix.Bundle))
	r.addSize(StageHE, "server_key_memory", kp, fix.Keys.MemoryBytes())
	r.addCount(StageHE, "rotation_keys", kp, len(galEls))
	r.tick(costKeygen(logN, s.KeygenReps), fmt.Sprintf("keygen %v", kp))
	if logN == he.DefaultParametersLiteral.LogN && hidden == DefaultHidden {
		r.defFix = fix
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
			sess := *fix
			sess.Network = wnet
			in, out, err := r.hePoint(ctx, m, &sess, pp)
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
// point of the grid, and returns the sizes of the input and output
// ciphertexts.
func (r *runner) hePoint(ctx context.Context, m *model.Model, sess *he.LocalSession, pp Params) (inBytes, outBytes int, err error) {
	imgs := r.images(0, pp.Images)
	var enc, dec, eval, e2e, per []float64
	stageMS := map[string][]float64{}
	for rep := 0; rep <= r.s.HE.Reps; rep++ {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		rt, err := sess.RoundTrip(ctx, imgs)
		if err != nil {
			return 0, 0, err
		}
		if rep == 0 {
			// Warm-up: check the result instead of timing it.
			if err := checkScores(m, imgs, rt.Scores); err != nil {
				return 0, 0, err
			}
			inBytes, outBytes = rt.InputBytes, rt.OutputBytes
			continue
		}
		enc = append(enc, stats.Milliseconds(rt.Encrypt))
		eval = append(eval, stats.Milliseconds(rt.Evaluate))
		dec = append(dec, stats.Milliseconds(rt.Decrypt))
		e2e = append(e2e, stats.Milliseconds(rt.Total()))
		per = append(per, stats.Milliseconds(rt.Total())/float64(pp.Images))
		for _, st := range heStages {
			stageMS[st] = append(stageMS[st], stats.Milliseconds(rt.Stages[st]))
		}
	}
	r.addLatency(StageHE, "encrypt", pp, enc)
	r.addLatency(StageHE, "evaluate", pp, eval)
	for _, st := range heStages {
		r.addLatency(StageHE, "evaluate/"+st, pp, stageMS[st])
	}
	r.addLatency(StageHE, "decrypt", pp, dec)
	r.addLatency(StageHE, "end_to_end", pp, e2e)
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
