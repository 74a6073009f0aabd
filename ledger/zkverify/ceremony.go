package zkverify

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// Ceremony implements ledger.CeremonyVerifier with zk/mpcsetup. Decoding
// an accumulator checks every point (subgroup checks: seconds at 2^17), and
// every contribution is verified against the previous one, so it keeps the
// last few decoded accumulators, compiled circuits and sealed SRSs keyed by
// the SHA-256 of their inputs: the next contribution then decodes only
// itself. Everything cached is a pure function of its key.
type Ceremony struct {
	mu      sync.Mutex
	phase1  map[[32]byte]*mpcsetup.Phase1
	phase2  map[[32]byte]*gmpc.Phase2
	starts  map[[32]byte]*mpcsetup.Phase2Start
	ccs     map[[32]byte]*compiled
	srs     map[[32]byte]*gmpc.SrsCommons
	initial map[uint64][32]byte
	// results of verifications, by the SHA-256 of their inputs: CometBFT
	// runs the same transaction through CheckTx, ProcessProposal and
	// FinalizeBlock, and a phase-1 contribution at 2^17 costs 15 s.
	results map[[32]byte]error
	infos   map[[32]byte]ledger.Phase2Info
}

type compiled struct {
	spec *circuits.Spec
	r    *cs.R1CS
}

var _ ledger.CeremonyVerifier = (*Ceremony)(nil)

// NewCeremony returns a ceremony verifier.
func NewCeremony() *Ceremony {
	return &Ceremony{
		phase1: map[[32]byte]*mpcsetup.Phase1{}, phase2: map[[32]byte]*gmpc.Phase2{}, starts: map[[32]byte]*mpcsetup.Phase2Start{},
		ccs: map[[32]byte]*compiled{}, srs: map[[32]byte]*gmpc.SrsCommons{}, initial: map[uint64][32]byte{},
		results: map[[32]byte]error{}, infos: map[[32]byte]ledger.Phase2Info{},
	}
}

const cacheMax = 4

func put[K comparable, V any](mu *sync.Mutex, m map[K]V, k K, v V) {
	mu.Lock()
	defer mu.Unlock()
	if len(m) >= cacheMax {
		clear(m)
	}
	m[k] = v
}

func lookup[K comparable, V any](mu *sync.Mutex, m map[K]V, k K) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := m[k]
	return v, ok
}

// classify wraps an mpcsetup error in the ledger's error of its kind.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mpcsetup.ErrSize), errors.Is(err, mpcsetup.ErrEncoding):
		return fmt.Errorf("%w: %v", ledger.ErrCeremonyEncoding, err)
	case errors.Is(err, mpcsetup.ErrNotExtending):
		return fmt.Errorf("%w: %v", ledger.ErrCeremonyNotExtending, err)
	case errors.Is(err, mpcsetup.ErrWrongCircuit):
		return fmt.Errorf("%w: %v", ledger.ErrCeremonyWrongCircuit, err)
	}
	return fmt.Errorf("%w: %v", ledger.ErrCeremonyContribution, err)
}

// Phase1InitialHash implements ledger.CeremonyVerifier.
func (c *Ceremony) Phase1InitialHash(n uint64) ([32]byte, error) {
	if h, ok := lookup(&c.mu, c.initial, n); ok {
		return h, nil
	}
	p, err := mpcsetup.NewPhase1(n)
	if err != nil {
		return [32]byte{}, err
	}
	h := p.Hash()
	put(&c.mu, c.initial, n, h)
	put(&c.mu, c.phase1, h, p)
	return h, nil
}

func (c *Ceremony) decodePhase1(b []byte, n uint64) (*mpcsetup.Phase1, error) {
	h := sha256.Sum256(b)
	if p, ok := lookup(&c.mu, c.phase1, h); ok {
		return p, nil
	}
	p, err := mpcsetup.DecodePhase1(b, n)
	if err != nil {
		return nil, classify(err)
	}
	put(&c.mu, c.phase1, h, p)
	return p, nil
}

// memo returns the cached result of the verification named by parts, or
// runs it and caches its result.
func (c *Ceremony) memo(f func() error, parts ...[]byte) error {
	k := memoKey(parts...)
	if err, ok := lookup(&c.mu, c.results, k); ok {
		return err
	}
	err := f()
	c.mu.Lock()
	if len(c.results) >= 256 {
		clear(c.results)
	}
	c.results[k] = err
	c.mu.Unlock()
	return err
}

func memoKey(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		d := sha256.Sum256(p)
		h.Write(d[:])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// VerifyPhase1 implements ledger.CeremonyVerifier.
// The memo key names the contributor: a copy refused for one key must
// not answer for its author.
func (c *Ceremony) VerifyPhase1(n uint64, prev, next, contributor []byte) error {
	return c.memo(func() error { return c.verifyPhase1(n, prev, next, contributor) }, []byte("phase1"), fmt.Append(nil, n), prev, next, contributor)
}

func (c *Ceremony) verifyPhase1(n uint64, prev, next, contributor []byte) error {
	// The size first: before allocating anything for domain n, which an
	// auditor takes from a node's record.
	if int64(len(next)) != mpcsetup.Phase1Size(n, false) {
		return fmt.Errorf("%w: %d bytes, a phase-1 contribution for domain %d has %d", ledger.ErrCeremonyEncoding, len(next), n, mpcsetup.Phase1Size(n, false))
	}
	var p *mpcsetup.Phase1
	var err error
	if prev == nil {
		if p, err = mpcsetup.NewPhase1(n); err != nil {
			return err
		}
	} else if p, err = c.decodePhase1(prev, n); err != nil {
		return err
	}
	q, err := c.decodePhase1(next, n)
	if err != nil {
		return err
	}
	return classify(p.VerifyAs(q, contributor))
}

func (c *Ceremony) compile(spec []byte, batch int) (*compiled, error) {
	k := sha256.Sum256(append(fmt.Appendf(nil, "%d\x00", batch), spec...))
	if r, ok := lookup(&c.mu, c.ccs, k); ok {
		return r, nil
	}
	s, err := circuits.ParseSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ledger.ErrCeremonySpec, err)
	}
	r, err := zk.Compile(s, batch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ledger.ErrCeremonySpec, err)
	}
	cc := &compiled{spec: s, r: r}
	put(&c.mu, c.ccs, k, cc)
	return cc, nil
}

// sealed is the sealed phase-1 SRS truncated to domain n.
func (c *Ceremony) sealed(p1 ledger.Phase1Transcript, n int) (*gmpc.SrsCommons, []byte, error) {
	last, err := c.decodePhase1(p1.Last, p1.Domain)
	if err != nil {
		return nil, nil, err
	}
	id := (&mpcsetup.Transcript1{Last: last, Beacon: p1.Beacon}).SRSID()
	k := sha256.Sum256(fmt.Appendf(id, "\x00%d", n))
	if s, ok := lookup(&c.mu, c.srs, k); ok {
		return s, id, nil
	}
	s, err := mpcsetup.SealPhase1To(context.Background(), last, p1.Beacon, n)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ledger.ErrCeremonyWrongCircuit, err)
	}
	put(&c.mu, c.srs, k, s)
	return s, id, nil
}

func (c *Ceremony) decodeStart(b []byte, r *cs.R1CS, n int) (*mpcsetup.Phase2Start, error) {
	h := sha256.Sum256(b)
	if s, ok := lookup(&c.mu, c.starts, h); ok {
		return s, nil
	}
	s, err := mpcsetup.DecodePhase2Start(b, r, n)
	if err != nil {
		return nil, classify(err)
	}
	put(&c.mu, c.starts, h, s)
	return s, nil
}

// CheckPhase2Start implements ledger.CeremonyVerifier.
func (c *Ceremony) CheckPhase2Start(p1 ledger.Phase1Transcript, spec []byte, batch int, start []byte) (ledger.Phase2Info, error) {
	k := memoKey([]byte("start"), fmt.Append(nil, p1.Domain, batch), p1.Last, p1.Beacon, spec, start)
	if info, ok := lookup(&c.mu, c.infos, k); ok {
		return info, nil
	}
	var info ledger.Phase2Info
	err := c.memo(func() error {
		var err error
		info, err = c.checkPhase2Start(p1, spec, batch, start)
		return err
	}, k[:])
	if err != nil {
		return ledger.Phase2Info{}, err
	}
	put(&c.mu, c.infos, k, info)
	return info, nil
}

var _ ledger.SpecBounder = (*Ceremony)(nil)

// CheckSpecFits implements ledger.SpecBounder. Compiling costs what the
// circuit's size does, for whoever sent the spec in a (refused, so free)
// transaction: a spec whose lower bound on constraints exceeds phase 1's
// domain is refused from the spec alone.
func (c *Ceremony) CheckSpecFits(spec []byte, batch int, domain uint64) error {
	s, err := circuits.ParseSpec(spec)
	if err != nil {
		return fmt.Errorf("%w: %v", ledger.ErrCeremonySpec, err)
	}
	if m := s.MinConstraints(batch); m > int64(domain) {
		return fmt.Errorf("%w: the circuit has at least %d constraints, phase 1 has a domain of %d", ledger.ErrCeremonyWrongCircuit, m, domain)
	}
	return nil
}

func (c *Ceremony) checkPhase2Start(p1 ledger.Phase1Transcript, spec []byte, batch int, start []byte) (ledger.Phase2Info, error) {
	if err := c.CheckSpecFits(spec, batch, p1.Domain); err != nil {
		return ledger.Phase2Info{}, err
	}
	cc, err := c.compile(spec, batch)
	if err != nil {
		return ledger.Phase2Info{}, err
	}
	n := zk.Domain(cc.r)
	if n > p1.Domain {
		return ledger.Phase2Info{}, fmt.Errorf("%w: the circuit needs a domain of %d, phase 1 has %d", ledger.ErrCeremonyWrongCircuit, n, p1.Domain)
	}
	srs, id, err := c.sealed(p1, int(n))
	if err != nil {
		return ledger.Phase2Info{}, err
	}
	s, err := c.decodeStart(start, cc.r, int(n))
	if errors.Is(err, ledger.ErrCeremonyEncoding) && int64(len(start)) != mpcsetup.Phase2StartSize(cc.r, int(n)) {
		// A start of another length is another circuit's.
		return ledger.Phase2Info{}, fmt.Errorf("%w: %v", ledger.ErrCeremonyWrongCircuit, err)
	}
	if err != nil {
		return ledger.Phase2Info{}, err
	}
	if err := mpcsetup.CheckPhase2Start(context.Background(), cc.r, srs, id, s); err != nil {
		return ledger.Phase2Info{}, classify(err)
	}
	return ledger.Phase2Info{Domain: n, SpecID: cc.spec.ID(), AccHash: mpcsetup.Phase2Hash(s.Acc), ContributionSize: mpcsetup.Phase2ContributionSize(cc.r, int(n))}, nil
}

func (c *Ceremony) accumulator(cc *compiled, b []byte, isStart bool) (*gmpc.Phase2, error) {
	if isStart {
		s, err := c.decodeStart(b, cc.r, int(zk.Domain(cc.r)))
		if err != nil {
			return nil, err
		}
		return s.Acc, nil
	}
	h := sha256.Sum256(b)
	if p, ok := lookup(&c.mu, c.phase2, h); ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: phase-2 accumulator %x is not cached", ledger.ErrCeremonyEncoding, h[:8])
}

// VerifyPhase2 implements ledger.CeremonyVerifier.
func (c *Ceremony) VerifyPhase2(spec []byte, batch int, prev []byte, prevIsStart bool, next, contributor []byte) error {
	return c.memo(func() error { return c.verifyPhase2(spec, batch, prev, prevIsStart, next, contributor) },
		[]byte("phase2"), spec, fmt.Append(nil, batch, prevIsStart), prev, next, contributor)
}

func (c *Ceremony) verifyPhase2(spec []byte, batch int, prev []byte, prevIsStart bool, next, contributor []byte) error {
	cc, err := c.compile(spec, batch)
	if err != nil {
		return err
	}
	p, err := c.accumulator(cc, prev, prevIsStart)
	if err != nil && !prevIsStart {
		// Not cached (a restarted node): decode it against the start's
		// shape, which every accumulator of this ceremony shares.
		p, err = c.decodePhase2Any(cc, prev)
	}
	if err != nil {
		return err
	}
	q, err := mpcsetup.DecodePhase2(next, p)
	if err != nil {
		return classify(err)
	}
	if err := mpcsetup.VerifyPhase2As(p, q, contributor); err != nil {
		return classify(err)
	}
	put(&c.mu, c.phase2, sha256.Sum256(next), q)
	return nil
}

// decodePhase2Any decodes a contribution whose predecessor is not at
// hand: its shape is the circuit's, so the circuit's initial accumulator
// shape (with a 32-byte challenge) fixes its length and every list length
// inside (checked before gnark's decoder allocates from them).
func (c *Ceremony) decodePhase2Any(cc *compiled, b []byte) (*gmpc.Phase2, error) {
	h := sha256.Sum256(b)
	p, err := mpcsetup.DecodePhase2For(b, cc.r, int(zk.Domain(cc.r)))
	if err != nil {
		return nil, classify(err)
	}
	put(&c.mu, c.phase2, h, p)
	return p, nil
}

// DeriveVerifyingKey implements ledger.CeremonyVerifier.
func (c *Ceremony) DeriveVerifyingKey(p1 ledger.Phase1Transcript, spec []byte, batch int, start, last, beacon []byte) ([]byte, error) {
	cc, err := c.compile(spec, batch)
	if err != nil {
		return nil, err
	}
	n := int(zk.Domain(cc.r))
	srs, _, err := c.sealed(p1, n)
	if err != nil {
		return nil, err
	}
	s, err := c.decodeStart(start, cc.r, n)
	if err != nil {
		return nil, err
	}
	acc := s.Acc
	if sha256.Sum256(last) != sha256.Sum256(start) {
		if acc, err = c.accumulator(cc, last, false); err != nil {
			if acc, err = c.decodePhase2Any(cc, last); err != nil {
				return nil, err
			}
		}
	}
	gvk, err := mpcsetup.DeriveVerifyingKey(cc.r, srs, s, acc, beacon)
	if err != nil {
		return nil, classify(err)
	}
	vk, err := zk.NewVerifyingKey(zk.ModelID(cc.spec.ID()), batch, cc.spec.Classes, gvk)
	if err != nil {
		return nil, err
	}
	return vk.MarshalBinary()
}
