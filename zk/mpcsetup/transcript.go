package mpcsetup

import (
	"context"
	"fmt"

	cmpc "github.com/consensys/gnark-crypto/ecc/bn254/mpcsetup"
	"github.com/consensys/gnark/backend/groth16"
	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/zk"
)

// A ceremony run on the ledger (ledger/ceremony.go) leaves a transcript:
// the last phase-1 accumulator and its beacon, the phase-2 start, the last
// phase-2 accumulator and its beacon. The functions here turn it into keys:
// SealPhase1To gives the SRS a circuit's domain needs (what the nodes check
// phase-2 starts against), Phase2StartFromSRS the start an opener submits,
// and ProvingKeyFromTranscript the prover's keys, whose verifying key is
// the one the nodes derived (DeriveVerifyingKey).

// SealPhase1To seals the last phase-1 accumulator with the beacon and
// returns the SRS truncated to a domain of n (a power of two up to the
// accumulator's). Sealing scales point i by a power of the beacon's
// scalars, so sealing the truncation is the truncation of the seal: a
// circuit of 2^10 costs 2^10 points, not the whole phase 1.
func SealPhase1To(ctx context.Context, last *Phase1, beacon []byte, n int) (*gmpc.SrsCommons, error) {
	t, err := TruncateSRS(&last.SRS, n)
	if err != nil {
		return nil, err
	}
	h := last.Hash()
	c := cmpc.BeaconContributions(h[:], phase1BeaconDST, beacon, 3)
	return updateSRS(ctx, t, &c[0], &c[1], &c[2])
}

// Phase2StartFromSRS computes the start of a phase 2 for ccs on the sealed
// SRS (already truncated to the circuit's domain): the Lagrange basis (a
// group FFT, the slow part), then NewPhase2Start. It also returns the
// evaluations the proving key needs.
func Phase2StartFromSRS(ctx context.Context, ccs *cs.R1CS, srs *gmpc.SrsCommons) (*Phase2Start, *gmpc.Phase2Evaluations, error) {
	lag, err := lagrangeFromSRS(ctx, srs, len(srs.G2.Tau))
	if err != nil {
		return nil, nil, fmt.Errorf("phase 2 start: Lagrange basis: %w", err)
	}
	return NewPhase2Start(ctx, ccs, srs, lag)
}

// Transcript1 is a sealed phase 1: its last accumulator and beacon.
type Transcript1 struct {
	Last   *Phase1
	Beacon []byte
}

// SRSID names a sealed phase 1 (the seed of CheckPhase2Start's random
// combination): the last accumulator's hash and the beacon.
func (t *Transcript1) SRSID() []byte {
	h := t.Last.Hash()
	return append(h[:], t.Beacon...)
}

// ProvingKeyFromTranscript makes the prover's keys for spec's circuit at
// batch from a ledger transcript: it seals phase 1, checks the recorded
// start against the circuit and the SRS (CheckPhase2Start, FFT-free, so
// the keys are that ceremony's without trusting the node's check), takes
// the verifying key's [K]₁ and the commitment bases from the start,
// computes the wires' evaluations from the Lagrange bases of [τ]₁ and
// [τ]₂ (two group FFTs, not the opener's four) and seals phase 2 with the
// last accumulator and the beacon. The verifying key equals
// DeriveVerifyingKey's on the same transcript, which is what the ledger
// stores.
func ProvingKeyFromTranscript(ctx context.Context, spec *circuits.Spec, batch int, p1 *Transcript1, start []byte, last *gmpc.Phase2, beacon2 []byte) (*zk.ProvingKey, error) {
	r, err := zk.Compile(spec, batch)
	if err != nil {
		return nil, err
	}
	pk, vk, err := keysFromTranscript(ctx, r, p1, start, last, beacon2)
	if err != nil {
		return nil, err
	}
	return zk.NewProvingKey(spec, batch, r, pk, vk)
}

func keysFromTranscript(ctx context.Context, r *cs.R1CS, p1 *Transcript1, start []byte, last *gmpc.Phase2, beacon2 []byte) (groth16.ProvingKey, groth16.VerifyingKey, error) {
	n := int(zk.Domain(r))
	srs, err := SealPhase1To(ctx, p1.Last, p1.Beacon, n)
	if err != nil {
		return nil, nil, err
	}
	s, err := DecodePhase2Start(start, r, n)
	if err != nil {
		return nil, nil, fmt.Errorf("proving key: the transcript's phase-2 start: %w", err)
	}
	if err := CheckPhase2Start(ctx, r, srs, p1.SRSID(), s); err != nil {
		return nil, nil, fmt.Errorf("proving key: the transcript's phase-2 start is not this circuit's on this phase 1: %w", err)
	}
	evals, err := evalsFromStart(ctx, r, srs, s)
	if err != nil {
		return nil, nil, err
	}
	pk, vk := SealPhase2(srs, evals, last, beacon2)
	return pk, vk, nil
}

// Phase2StartSize is the length of the encoding of the start of a phase 2
// for ccs on a domain of n (-1 if the circuit does not fit).
func Phase2StartSize(ccs *cs.R1CS, n int) int64 {
	sh, err := shapeOf(ccs, n)
	if err != nil {
		return -1
	}
	return sh.startSize()
}

// Phase2ContributionSize is the length of every contribution to the phase
// 2 of ccs on a domain of n (-1 if the circuit does not fit): the ledger
// refuses a chunk list of another total length before reassembling it.
func Phase2ContributionSize(ccs *cs.R1CS, n int) int64 {
	sh, err := shapeOf(ccs, n)
	if err != nil {
		return -1
	}
	return sh.contributionSize()
}
