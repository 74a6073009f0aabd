package federated

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The plaintext of an owner's update, before encryption:
//
//	slots [0, P)         w_i·Δ_i, the owner's parameter change weighted by
//	                     w_i = n_i / Σ n_j (committed sample counts)
//	slots [P, 2P)        w_i·c_i, its new SCAFFOLD control variate (the
//	                     mean gradient of its round; only with SCAFFOLD)
//	slot  W = P or 2P    w_i
//	slots (W, pieces·N)  check values r_i[k], pseudo-random in [-1, 1],
//	                     derived from (training, round, owner)
//
// After decryption the aggregate must show, in slot W, the sum of the
// committed weights of the owners it names and, in every check slot, the
// sum of their check values (within the CKKS precision). The new model is
// x + Σ w_i·Δ_i / Σ w_i, the new global control variate Σ w_i·c_i / Σ w_i
// rounded to a multiple of 2^-12: above the decryption noise (below 2^-14),
// so that a coordinate whose gradients are all exactly zero (a border pixel)
// gets exactly zero correction. Adam would otherwise turn that noise, sent
// round after round as a constant gradient, into full-size steps.

// checkTolerance bounds |decrypted − expected| in the weight and check
// slots. Decryption errors measure below 2^-15 (he tests); an update under
// another key, a wrong or random decryption share, a share of another
// ciphertext or a stale one gives errors of order 2^10 (q/Δ).
const checkTolerance = 1.0 / (1 << 10)

// agreeTolerance bounds the difference between two t-subsets' decryptions
// of the same aggregate in any slot.
const agreeTolerance = 1.0 / (1 << 10)

// updateLayout is the slot layout of one training's updates.
type updateLayout struct {
	params  int // model parameters P
	control int // P with SCAFFOLD, else 0
	slots   int // pieces × slots per ciphertext
}

func newLayout(params, slotsPerCiphertext int, scaffold bool) updateLayout {
	l := updateLayout{params: params}
	if scaffold {
		l.control = params
	}
	pieces := (l.weightSlot() + 1 + 1 + slotsPerCiphertext - 1) / slotsPerCiphertext // at least one check slot
	l.slots = pieces * slotsPerCiphertext
	return l
}

func (l updateLayout) pieces(slotsPerCiphertext int) int { return l.slots / slotsPerCiphertext }

func (l updateLayout) weightSlot() int { return l.params + l.control }

func (l updateLayout) checks() int { return l.slots - l.weightSlot() - 1 }

// checkValues derives an owner's check values for a round.
func checkValues(trainingID string, round, owner, n int) []float64 {
	out := make([]float64, n)
	var ctr [8]byte
	var block [32]byte
	for i := range out {
		if i%4 == 0 {
			h := sha256.New()
			h.Write([]byte("veil/federated/check\x00"))
			h.Write([]byte(trainingID))
			binary.BigEndian.PutUint32(ctr[:4], uint32(round))
			binary.BigEndian.PutUint32(ctr[4:], uint32(owner))
			h.Write(ctr[:])
			binary.BigEndian.PutUint64(ctr[:], uint64(i/4))
			h.Write(ctr[:])
			h.Sum(block[:0])
		}
		u := binary.BigEndian.Uint64(block[8*(i%4):])
		out[i] = 2*float64(u>>11)/float64(1<<53) - 1
	}
	return out
}

// buildUpdate lays out an owner's weighted update (ci: its new control
// variate, nil without SCAFFOLD).
func (l updateLayout) buildUpdate(delta, dc []float64, weight float64, trainingID string, round, owner int) ([]float64, error) {
	if len(delta) != l.params || len(dc) != l.control {
		return nil, fmt.Errorf("update: %d parameter changes and %d control changes, the layout has %d and %d", len(delta), len(dc), l.params, l.control)
	}
	if !(weight > 0 && weight <= 1) {
		return nil, fmt.Errorf("update: weight %g not in (0, 1]", weight)
	}
	v := make([]float64, l.slots)
	for i, d := range append(slices.Clone(delta), dc...) {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return nil, fmt.Errorf("update: value %d is not finite", i)
		}
		v[i] = weight * d
	}
	v[l.weightSlot()] = weight
	copy(v[l.weightSlot()+1:], checkValues(trainingID, round, owner, l.checks()))
	return v, nil
}

// errCheck is wrapped by every failed check of a decrypted aggregate.
var errCheck = errors.New("decrypted aggregate fails its checks")

// openAggregate checks a decrypted aggregate of the updates of owners
// (with committed weights) and returns the weighted mean change of the
// parameters and the weighted mean control variate.
func (l updateLayout) openAggregate(vals []float64, trainingID string, round int, owners []int, weights []float64) (mean, dc []float64, err error) {
	if len(vals) != l.slots {
		return nil, nil, fmt.Errorf("%w: %d values, want %d", errCheck, len(vals), l.slots)
	}
	var wsum float64
	want := make([]float64, l.checks())
	for _, o := range owners {
		wsum += weights[o]
		for k, c := range checkValues(trainingID, round, o, l.checks()) {
			want[k] += c
		}
	}
	ws := l.weightSlot()
	if d := math.Abs(vals[ws] - wsum); !(d <= checkTolerance) {
		return nil, nil, fmt.Errorf("%w: weight slot is %.6g, the committed weights of owners %v sum to %.6g", errCheck, vals[ws], owners, wsum)
	}
	for k, w := range want {
		if d := math.Abs(vals[ws+1+k] - w); !(d <= checkTolerance) {
			return nil, nil, fmt.Errorf("%w: check slot %d is off by %.3g", errCheck, k, d)
		}
	}
	// Rounding to a grid far below the decryption noise makes the result
	// independent of the last bits of the decoding arithmetic.
	mean = make([]float64, l.params)
	for i := range mean {
		mean[i] = roundGrid(vals[i] / wsum)
	}
	dc = make([]float64, l.control)
	for i := range dc {
		dc[i] = roundControl(vals[l.params+i] / wsum)
	}
	for i, x := range append(slices.Clone(mean), dc...) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil, fmt.Errorf("%w: value %d is not finite", errCheck, i)
		}
	}
	return mean, dc, nil
}

// roundGrid rounds to a multiple of 2^-32.
func roundGrid(x float64) float64 { return math.Round(x*(1<<32)) / (1 << 32) }

// controlGrid is the resolution of the global control variate.
const controlGrid = 1.0 / (1 << 12)

// roundControl rounds to a multiple of controlGrid.
func roundControl(x float64) float64 { return math.Round(x/controlGrid) * controlGrid }

// agree reports the largest difference between two decryptions.
func agree(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
