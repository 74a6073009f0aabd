package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// The trusted setup as transactions (issue 13, docs/zk.md "The ceremony on
// the ledger"). A chain whose parameters set a phase-1 domain has a phase 1
// (id Phase1ID) open from genesis; phase 2 ceremonies are opened per
// circuit. Every accumulator travels as content-addressed chunks
// (CeremonyChunk, each within the transaction size limit) that a
// CeremonyContribution names in order; the node that applies the
// contribution reassembles them and verifies the accumulator against the
// previous one (CeremonyVerifier, deterministic given the bytes), so
// every node verifies every contribution before it is in the state:
//
//	CeremonyChunk         anyone        a piece of an encoding, by its SHA-256
//	CeremonyContribution  anyone        extends the ceremony's last accumulator
//	Phase2Open            model owner   spec + batch + the start (checked against the R1CS)
//	CeremonyClose         anyone (phase 1) / the opener (phase 2): no more contributions
//	CeremonySeal          anyone        after the beacon block: beacon = its head hash
//
// The phase-2 seal derives the circuit's verifying key (stored in the vks
// bucket); a RegisterModel naming the ceremony must carry exactly that key.

// Phase1ID is the ceremony id of the chain's phase 1.
const Phase1ID = "phase1"

var (
	bChunks        = []byte("ceremony_chunks") // SHA-256 -> chunk
	bCeremonies    = []byte("ceremonies")      // ceremony id -> CeremonyRecord
	bCeremonyAccum = []byte("ceremony_accums") // accumulator blob SHA-256 -> ceremony id (replays)
)

func init() {
	cb := [][]byte{bChunks, bCeremonies, bCeremonyAccum}
	allBuckets = append(allBuckets, cb...)
	stateBuckets = append(stateBuckets, cb...)
}

// Limits of the ceremony rules (consensus rules).
const (
	// MaxChunkBytes bounds one chunk: a CeremonyChunk transaction stays
	// under MaxTxBytes with its envelope.
	MaxChunkBytes = 240 << 10
	// MaxChunksPerBlob bounds the chunks of one accumulator (3.75 GiB:
	// more than phase 1 at mpcsetup.MaxDomain).
	MaxChunksPerBlob = 1 << 14
	// MaxPhase1Domain is mpcsetup.MaxDomain (the ledger does not link it).
	MaxPhase1Domain = 1 << 24
	// MaxCeremonyContributions bounds the contributions of one ceremony:
	// its record (every step's chunk list and attestation) is rewritten
	// per contribution and served as one gRPC message, which an unbounded
	// ceremony outgrew after ~135 contributions at 2^17. Each contribution
	// needs only one honest party, so 64 are plenty.
	MaxCeremonyContributions = 64
	// MaxAttestationBytes bounds a contribution's attestation (what the
	// contributor says about how it made it), for the same reason.
	MaxAttestationBytes = 256
)

// CeremonyParams are the ceremony's chain parameters.
type CeremonyParams struct {
	// Phase1Domain > 0 opens the chain's phase 1 for this FFT domain (a
	// power of two): it serves every circuit of at most this many
	// constraints. It also makes RegisterModel name a sealed ceremony.
	Phase1Domain uint64
	// MinContributions is the fewest distinct contributors (keys) a
	// ceremony needs before it may be closed (0: 1); a phase 2's opener
	// (the model owner, who would like to know every secret) does not
	// count. Keys are free, so this is no defence against one party with
	// many keys: the close heights below give everyone time to contribute.
	MinContributions uint32
	// BeaconDelay is the number of blocks from the close to the block
	// whose head is the beacon (0: 1). Nobody chooses that height.
	BeaconDelay uint64
	// Phase1CloseHeight is the first height at which phase 1 may be
	// closed (0: any): anyone may close phase 1, and without it a party
	// that contributed MinContributions times under fresh keys could close
	// it before the honest validators contribute.
	Phase1CloseHeight uint64
	// Phase2Window is the number of blocks after a phase 2 is opened
	// before its opener may close it (0: none), so that others can
	// contribute before the opener closes on its own contributions.
	Phase2Window uint64
	// Phase1Contributors, if set, are keys that must all have contributed
	// before phase 1 may be closed (a testnet's validators' contributor
	// keys): N distinct keys are free, so without them anybody with N
	// fresh keys could fill the count and close phase 1 without the
	// validators' randomness.
	Phase1Contributors []ed25519.PublicKey
	// InsecureOwnerKeys lets a chain with a phase 1 accept registrations
	// whose verifying key the owner made: INSECURE, local experiments.
	InsecureOwnerKeys bool
}

func (c CeremonyParams) validate() error {
	if c.Phase1Domain != 0 && (c.Phase1Domain < 2 || c.Phase1Domain&(c.Phase1Domain-1) != 0 || c.Phase1Domain > MaxPhase1Domain) {
		return fmt.Errorf("ceremony phase-1 domain %d: a power of two in [2, 2^24], or 0", c.Phase1Domain)
	}
	if c.BeaconDelay > MaxProofDeadlineBlocks || c.MinContributions > 1<<20 || c.Phase2Window > 1<<32 {
		return errors.New("ceremony beacon delay, minimum contributions or phase-2 window out of range")
	}
	if len(c.Phase1Contributors) > MaxCeremonyContributions {
		return fmt.Errorf("ceremony: %d required phase-1 contributors, at most %d", len(c.Phase1Contributors), MaxCeremonyContributions)
	}
	seen := map[string]bool{}
	for _, k := range c.Phase1Contributors {
		if len(k) != ed25519.PublicKeySize || seen[string(k)] {
			return errors.New("ceremony: a required phase-1 contributor is not a 32-byte key, or is listed twice")
		}
		seen[string(k)] = true
	}
	return nil
}

func (c CeremonyParams) minContributions() int {
	return max(1, int(c.MinContributions))
}

func (c CeremonyParams) beaconDelay() uint64 { return max(1, c.BeaconDelay) }

// Errors a CeremonyVerifier wraps, so that the ledger gives each failure
// its own rejection code.
var (
	ErrCeremonyEncoding     = errors.New("accumulator has the wrong size or does not decode")
	ErrCeremonyNotExtending = errors.New("accumulator does not extend the previous one")
	ErrCeremonyContribution = errors.New("bad contribution")
	ErrCeremonyWrongCircuit = errors.New("wrong circuit")
	ErrCeremonySpec         = errors.New("the spec does not parse or does not compile")
)

// Phase2Info is what the ledger learns from a checked phase-2 start.
type Phase2Info struct {
	Domain  uint64   // the circuit's FFT domain
	SpecID  [32]byte // the circuit id
	AccHash [32]byte // hash of the start's accumulator: the first contribution's challenge
	// ContributionSize is the length of every contribution: the ledger
	// refuses a chunk list of another total length before copying it.
	ContributionSize int64
}

// Phase1Transcript is the sealed phase 1 as a verifier needs it.
type Phase1Transcript struct {
	Domain uint64
	Last   []byte // the last accumulator's encoding
	Beacon []byte
}

// CeremonyVerifier is the cryptography of the ceremony (ledger/zkverify
// implements it with zk/mpcsetup). Every method is a deterministic function
// of its arguments and safe for concurrent use; errors wrap the Err*
// above.
type CeremonyVerifier interface {
	// Phase1InitialHash is the hash of the initial phase-1 accumulator of
	// the domain (the first contribution's challenge).
	Phase1InitialHash(domain uint64) ([32]byte, error)
	// VerifyPhase1 checks that next is a contribution on prev (nil: the
	// initial accumulator) whose proofs of knowledge are bound to
	// contributor, the key that signs it: a contribution copied from the
	// chunk store and submitted by another key fails.
	VerifyPhase1(domain uint64, prev, next, contributor []byte) error
	// CheckPhase2Start checks that start opens the phase 2 of spec's
	// circuit at batch on the sealed phase 1.
	CheckPhase2Start(p1 Phase1Transcript, spec []byte, batch int, start []byte) (Phase2Info, error)
	// VerifyPhase2 checks that next is a contribution on prev (the start
	// when prevIsStart) in the phase 2 of spec's circuit at batch, its
	// proofs bound to contributor, as for VerifyPhase1.
	VerifyPhase2(spec []byte, batch int, prev []byte, prevIsStart bool, next, contributor []byte) error
	// DeriveVerifyingKey returns the verifying key (zk encoding) of the
	// sealed phase 2 whose last accumulator is last (the start if there
	// is none).
	DeriveVerifyingKey(p1 Phase1Transcript, spec []byte, batch int, start, last, beacon []byte) ([]byte, error)
}

// SpecBounder is implemented by a CeremonyVerifier that can refuse a
// spec too big for the phase-1 domain from the spec alone: the ledger asks
// it before reassembling the sealed phase 1 and the start for a
// Phase2Open (errors wrap ErrCeremonyWrongCircuit or ErrCeremonySpec).
type SpecBounder interface {
	CheckSpecFits(spec []byte, batch int, domain uint64) error
}

// CeremonyAPI is a ledger that also answers ceremony queries.
type CeremonyAPI interface {
	API
	// Ceremony returns a ceremony's record (for Phase1ID before any
	// contribution: an empty record whose last_hash is the initial one).
	Ceremony(ctx context.Context, id string) (*ledgerv1.CeremonyRecord, error)
	// Chunk returns a stored chunk by its SHA-256.
	Chunk(ctx context.Context, hash []byte) ([]byte, error)
}

func checkCeremonyFields(body *ledgerv1.TxBody) (ok bool, rj *Rejection) {
	chunks := func(cs [][]byte) *Rejection {
		if len(cs) == 0 || len(cs) > MaxChunksPerBlob {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "an accumulator has 1..%d chunks, not %d", MaxChunksPerBlob, len(cs))
		}
		for i, c := range cs {
			if len(c) != sha256.Size {
				return reject(ledgerv1.Code_CODE_INVALID_FIELD, "chunk hash %d has %d bytes, want 32", i, len(c))
			}
		}
		return nil
	}
	switch t := body.Tx.(type) {
	case *ledgerv1.TxBody_CeremonyChunk:
		if n := len(t.CeremonyChunk.Data); n == 0 || n > MaxChunkBytes {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "a chunk has 1..%d bytes, not %d", MaxChunkBytes, n)
		}
	case *ledgerv1.TxBody_CeremonyContribution:
		c := t.CeremonyContribution
		if len(c.Attestation) > MaxAttestationBytes {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "attestation has %d bytes, at most %d", len(c.Attestation), MaxAttestationBytes)
		}
		return true, firstRejection(checkID("ceremony_id", c.CeremonyId), check32("previous_hash", c.PreviousHash), chunks(c.Chunks), checkText("attestation", c.Attestation))
	case *ledgerv1.TxBody_Phase2Open:
		o := t.Phase2Open
		if rj := firstRejection(checkID("ceremony_id", o.CeremonyId), chunks(o.Chunks)); rj != nil {
			return true, rj
		}
		if o.CeremonyId == Phase1ID {
			return true, reject(ledgerv1.Code_CODE_CEREMONY_EXISTS, "%q is the chain's phase 1", Phase1ID)
		}
		if len(o.Spec) == 0 || len(o.Spec) > MaxSpecBytes {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "spec must be 1..%d bytes", MaxSpecBytes)
		}
		if o.Batch == 0 || o.Batch > MaxChallenges {
			return true, reject(ledgerv1.Code_CODE_INVALID_FIELD, "batch must be 1..%d", MaxChallenges)
		}
	case *ledgerv1.TxBody_CeremonyClose:
		return true, checkID("ceremony_id", t.CeremonyClose.CeremonyId)
	case *ledgerv1.TxBody_CeremonySeal:
		return true, checkID("ceremony_id", t.CeremonySeal.CeremonyId)
	default:
		return false, nil
	}
	return true, nil
}

func describeCeremony(b *ledgerv1.TxBody) (kind, summary string, ok bool) {
	switch t := b.Tx.(type) {
	case *ledgerv1.TxBody_CeremonyChunk:
		h := sha256.Sum256(t.CeremonyChunk.Data)
		return "CeremonyChunk", fmt.Sprintf("%d bytes, %x", len(t.CeremonyChunk.Data), h[:8]), true
	case *ledgerv1.TxBody_CeremonyContribution:
		c := t.CeremonyContribution
		return "CeremonyContribution", fmt.Sprintf("ceremony %s after %x, %d chunks", trunc(c.CeremonyId), prefix8(c.PreviousHash), len(c.Chunks)), true
	case *ledgerv1.TxBody_Phase2Open:
		o := t.Phase2Open
		return "Phase2Open", fmt.Sprintf("ceremony %s, batch %d, %d-chunk start", trunc(o.CeremonyId), o.Batch, len(o.Chunks)), true
	case *ledgerv1.TxBody_CeremonyClose:
		return "CeremonyClose", "ceremony " + trunc(t.CeremonyClose.CeremonyId), true
	case *ledgerv1.TxBody_CeremonySeal:
		return "CeremonySeal", "ceremony " + trunc(t.CeremonySeal.CeremonyId), true
	}
	return "", "", false
}

func prefix8(b []byte) []byte { return b[:min(8, len(b))] }

// getCeremony returns a ceremony's record. The chain's phase 1 exists from
// genesis (when configured) and is materialised by its first transaction.
func (s *Store) getCeremony(btx *bolt.Tx, id string) (*ledgerv1.CeremonyRecord, *Rejection) {
	rec := &ledgerv1.CeremonyRecord{}
	ok, err := getProto(btx, bCeremonies, []byte(id), rec)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored ceremony: %v", err)
	}
	if ok {
		return rec, nil
	}
	if id != Phase1ID || s.params.Ceremony.Phase1Domain == 0 {
		return nil, reject(ledgerv1.Code_CODE_UNKNOWN_CEREMONY, "no ceremony %q on this chain", trunc(id))
	}
	if s.opts.Ceremony == nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_UNSUPPORTED, "this node has no ceremony verifier")
	}
	h, err := s.opts.Ceremony.Phase1InitialHash(s.params.Ceremony.Phase1Domain)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_UNSUPPORTED, "initial phase-1 accumulator: %v", err)
	}
	return &ledgerv1.CeremonyRecord{CeremonyId: Phase1ID, Phase: 1, Domain: s.params.Ceremony.Phase1Domain, LastHash: h[:]}, nil
}

// blob reassembles an accumulator from its chunks.
func blob(btx *bolt.Tx, chunks [][]byte) ([]byte, *Rejection) {
	var b bytes.Buffer
	for i, h := range chunks {
		c := get(btx, bChunks, h)
		if c == nil {
			return nil, reject(ledgerv1.Code_CODE_MISSING_CHUNK, "chunk %d (%x) is not stored: upload it first", i, prefix8(h))
		}
		b.Write(c)
	}
	return b.Bytes(), nil
}

// Phase1ContributionSize is the length of a phase-1 contribution for
// domain n (mpcsetup.Phase1Size(n, false), which the ledger does not
// link; a zkverify test checks they agree): three update proofs, N, [β]₂,
// the powers in compressed BN254 points (32 bytes in G1, 64 in G2) and a
// 32-byte challenge with its length byte.
func Phase1ContributionSize(n uint64) int64 {
	const g1, g2 = 32, 64
	return 3*(g1+g2) + 8 + g2 + int64(2*n-2)*g1 + int64(n-1)*g2 + int64(2*n)*g1 + 1 + 32
}

// contributionSize is the length every contribution to rec must have (0:
// unknown, a phase-2 record stored before the size was).
func contributionSize(rec *ledgerv1.CeremonyRecord) int64 {
	if rec.Phase == 1 {
		return Phase1ContributionSize(rec.Domain)
	}
	return rec.ContributionSize
}

// checkChunkList refuses an accumulator's chunk list before any chunk is
// copied or hashed: a chunk named twice (one uploaded chunk named
// thousands of times made a free, refused transaction cost every node
// gigabytes of copying and hashing), a missing chunk, more chunks than
// want bytes need, or (want > 0) lengths that do not sum to want. A
// chunk's length is its stored value's, read without reading the chunk.
func checkChunkList(btx *bolt.Tx, chunks [][]byte, want int64) *Rejection {
	if want > 0 {
		if most := (want + MaxChunkBytes - 1) / MaxChunkBytes; int64(len(chunks)) > most {
			return reject(ledgerv1.Code_CODE_CEREMONY_BAD_CHUNK_LIST, "%d chunks for a %d-byte accumulator (at most %d)", len(chunks), want, most)
		}
	}
	seen := make(map[string]bool, len(chunks))
	var total int64
	b := btx.Bucket(bChunks)
	for i, h := range chunks {
		k := string(h)
		if seen[k] {
			return reject(ledgerv1.Code_CODE_CEREMONY_BAD_CHUNK_LIST, "chunk %d (%x) is named twice", i, prefix8(h))
		}
		seen[k] = true
		v := b.Get(h)
		if v == nil {
			return reject(ledgerv1.Code_CODE_MISSING_CHUNK, "chunk %d (%x) is not stored: upload it first", i, prefix8(h))
		}
		total += int64(len(v) - 4) // the value is the chunk and its 4-byte seal
	}
	if want > 0 && total != want {
		return reject(ledgerv1.Code_CODE_CEREMONY_BAD_ENCODING, "the chunks hold %d bytes, a contribution to this ceremony has %d", total, want)
	}
	return nil
}

// ceremonyRejection gives a verifier's error its code.
func ceremonyRejection(what string, err error) *Rejection {
	code := ledgerv1.Code_CODE_CEREMONY_BAD_CONTRIBUTION
	switch {
	case errors.Is(err, ErrCeremonyEncoding):
		code = ledgerv1.Code_CODE_CEREMONY_BAD_ENCODING
	case errors.Is(err, ErrCeremonyNotExtending):
		code = ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING
	case errors.Is(err, ErrCeremonyWrongCircuit):
		code = ledgerv1.Code_CODE_CEREMONY_WRONG_CIRCUIT
	case errors.Is(err, ErrCeremonySpec):
		code = ledgerv1.Code_CODE_SPEC_MISMATCH
	}
	return reject(code, "%s: %v", what, err)
}

func (s *Store) ceremonyVerifier() (CeremonyVerifier, *Rejection) {
	if s.opts.Ceremony == nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_UNSUPPORTED, "this node has no ceremony verifier")
	}
	return s.opts.Ceremony, nil
}

// phase1Transcript is the sealed phase 1.
func (s *Store) phase1Transcript(btx *bolt.Tx) (Phase1Transcript, *Rejection) {
	p1, rj := s.getCeremony(btx, Phase1ID)
	if rj != nil {
		return Phase1Transcript{}, rj
	}
	if !p1.Sealed {
		return Phase1Transcript{}, reject(ledgerv1.Code_CODE_CEREMONY_NOT_SEALED, "phase 1 is not sealed")
	}
	last, rj := blob(btx, p1.Contributions[len(p1.Contributions)-1].Chunks)
	if rj != nil {
		return Phase1Transcript{}, rj
	}
	return Phase1Transcript{Domain: p1.Domain, Last: last, Beacon: p1.Beacon}, nil
}

// checkCeremony runs the rules of the ceremony transactions; ok is false
// for other types.
func (s *Store) checkCeremony(btx *bolt.Tx, tx *Tx, index, height uint64) (w writeFn, rj *Rejection, ok bool) {
	switch t := tx.Body.Tx.(type) {
	case *ledgerv1.TxBody_CeremonyChunk:
		h := sha256.Sum256(t.CeremonyChunk.Data)
		if get(btx, bChunks, h[:]) != nil {
			return nil, reject(ledgerv1.Code_CODE_CHUNK_EXISTS, "chunk %x is already stored", h[:8]), true
		}
		data := t.CeremonyChunk.Data
		return func(w *writer) error { return w.put(bChunks, h[:], data) }, nil, true
	case *ledgerv1.TxBody_CeremonyContribution:
		w, rj := s.checkContribution(btx, tx, t.CeremonyContribution, index, height)
		return w, rj, true
	case *ledgerv1.TxBody_Phase2Open:
		w, rj := s.checkPhase2Open(btx, tx, t.Phase2Open, index, height)
		return w, rj, true
	case *ledgerv1.TxBody_CeremonyClose:
		w, rj := s.checkCeremonyClose(btx, tx, t.CeremonyClose, height)
		return w, rj, true
	case *ledgerv1.TxBody_CeremonySeal:
		w, rj := s.checkCeremonySeal(btx, t.CeremonySeal, index, height)
		return w, rj, true
	}
	return nil, nil, false
}

func putCeremony(rec *ledgerv1.CeremonyRecord) writeFn {
	return func(w *writer) error { return w.putProto(bCeremonies, []byte(rec.CeremonyId), rec) }
}

func (s *Store) checkContribution(btx *bolt.Tx, tx *Tx, c *ledgerv1.CeremonyContribution, index, height uint64) (writeFn, *Rejection) {
	rec, rj := s.getCeremony(btx, c.CeremonyId)
	if rj != nil {
		return nil, rj
	}
	if rec.Sealed || rec.CloseHeight != 0 {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_CLOSED, "ceremony %q was closed at height %d", trunc(c.CeremonyId), rec.CloseHeight)
	}
	if len(rec.Contributions) >= MaxCeremonyContributions {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_FULL, "ceremony %q has %d contributions, the most a ceremony may have", trunc(c.CeremonyId), len(rec.Contributions))
	}
	// The cheap checks come first: the state, the previous hash and the
	// chunk list, before anything is copied or hashed.
	if !bytes.Equal(c.PreviousHash, rec.LastHash) {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING, "ceremony %q is at %x, the contribution extends %x", trunc(c.CeremonyId), prefix8(rec.LastHash), prefix8(c.PreviousHash))
	}
	v, rj := s.ceremonyVerifier()
	if rj != nil {
		return nil, rj
	}
	if rj := checkChunkList(btx, c.Chunks, contributionSize(rec)); rj != nil {
		return nil, rj
	}
	next, rj := blob(btx, c.Chunks)
	if rj != nil {
		return nil, rj
	}
	h := sha256.Sum256(next)
	if id := get(btx, bCeremonyAccum, h[:]); id != nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_REPLAYED, "accumulator %x is already recorded in ceremony %q", h[:8], trunc(string(id)))
	}
	var prev []byte
	if n := len(rec.Contributions); n > 0 {
		if prev, rj = blob(btx, rec.Contributions[n-1].Chunks); rj != nil {
			return nil, rj
		}
	}
	var err error
	if rec.Phase == 1 {
		err = v.VerifyPhase1(rec.Domain, prev, next, tx.Signer)
	} else {
		isStart := prev == nil
		if isStart {
			if prev, rj = blob(btx, rec.Start.Chunks); rj != nil {
				return nil, rj
			}
		}
		err = v.VerifyPhase2(rec.Spec, int(rec.Batch), prev, isStart, next, tx.Signer)
	}
	if err != nil {
		return nil, ceremonyRejection(fmt.Sprintf("ceremony %q contribution %d", trunc(c.CeremonyId), len(rec.Contributions)+1), err)
	}
	rec.Contributions = append(rec.Contributions, &ledgerv1.CeremonyStep{
		Hash: h[:], Chunks: c.Chunks, Contributor: tx.Signer, Index: index, Height: height, Attestation: c.Attestation,
	})
	rec.LastHash = h[:]
	id := c.CeremonyId
	return func(w *writer) error {
		return errors.Join(w.put(bCeremonyAccum, h[:], []byte(id)), putCeremony(rec)(w))
	}, nil
}

func (s *Store) checkPhase2Open(btx *bolt.Tx, tx *Tx, o *ledgerv1.Phase2Open, index, height uint64) (writeFn, *Rejection) {
	if get(btx, bCeremonies, []byte(o.CeremonyId)) != nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_EXISTS, "ceremony %q exists", trunc(o.CeremonyId))
	}
	v, rj := s.ceremonyVerifier()
	if rj != nil {
		return nil, rj
	}
	// Cheap checks before the phase-1 transcript and the start are
	// reassembled: phase 1 is sealed, the start's chunk list names no
	// chunk twice.
	if p1, rj := s.getCeremony(btx, Phase1ID); rj != nil {
		return nil, rj
	} else if !p1.Sealed {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_NOT_SEALED, "phase 1 is not sealed")
	}
	if rj := checkChunkList(btx, o.Chunks, 0); rj != nil {
		return nil, rj
	}
	if b, ok := v.(SpecBounder); ok {
		if err := b.CheckSpecFits(o.Spec, int(o.Batch), s.params.Ceremony.Phase1Domain); err != nil {
			return nil, ceremonyRejection(fmt.Sprintf("phase-2 spec of %q", trunc(o.CeremonyId)), err)
		}
	}
	p1, rj := s.phase1Transcript(btx)
	if rj != nil {
		return nil, rj
	}
	start, rj := blob(btx, o.Chunks)
	if rj != nil {
		return nil, rj
	}
	info, err := v.CheckPhase2Start(p1, o.Spec, int(o.Batch), start)
	if err != nil {
		return nil, ceremonyRejection(fmt.Sprintf("phase-2 start of %q", trunc(o.CeremonyId)), err)
	}
	rec := &ledgerv1.CeremonyRecord{
		CeremonyId: o.CeremonyId, Phase: 2, Domain: info.Domain, Spec: o.Spec, Batch: o.Batch, SpecId: info.SpecID[:], Opener: tx.Signer,
		Start:    &ledgerv1.CeremonyStep{Hash: info.AccHash[:], Chunks: o.Chunks, Contributor: tx.Signer, Index: index, Height: height},
		LastHash: info.AccHash[:], ContributionSize: info.ContributionSize,
	}
	return putCeremony(rec), nil
}

func (s *Store) checkCeremonyClose(btx *bolt.Tx, tx *Tx, c *ledgerv1.CeremonyClose, height uint64) (writeFn, *Rejection) {
	rec, rj := s.getCeremony(btx, c.CeremonyId)
	if rj != nil {
		return nil, rj
	}
	if rec.Sealed || rec.CloseHeight != 0 {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_CLOSED, "ceremony %q was closed at height %d", trunc(c.CeremonyId), rec.CloseHeight)
	}
	if rec.Phase == 2 && !bytes.Equal(tx.Signer, rec.Opener) {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "only the opener of phase 2 %q closes it", trunc(c.CeremonyId))
	}
	notBefore := s.params.Ceremony.Phase1CloseHeight
	if rec.Phase == 2 {
		notBefore = rec.GetStart().GetHeight() + s.params.Ceremony.Phase2Window
	}
	if height < notBefore {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_CLOSE_TOO_EARLY, "ceremony %q may be closed from height %d, this is %d", trunc(c.CeremonyId), notBefore, height)
	}
	if n, min := distinctContributors(rec), s.params.Ceremony.minContributions(); n < min {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_TOO_FEW, "ceremony %q has %d distinct contributors (the phase-2 opener not counted), it needs %d", trunc(c.CeremonyId), n, min)
	}
	if rec.Phase == 1 {
		for _, k := range s.params.Ceremony.Phase1Contributors {
			if !contributed(rec, k) {
				return nil, reject(ledgerv1.Code_CODE_CEREMONY_TOO_FEW, "phase 1 may not be closed before required contributor %x contributes", k[:8])
			}
		}
	}
	rec.CloseHeight = height
	rec.BeaconHeight = height + s.params.Ceremony.beaconDelay()
	return putCeremony(rec), nil
}

// contributed reports whether key contributed to rec.
func contributed(rec *ledgerv1.CeremonyRecord, key []byte) bool {
	for _, c := range rec.Contributions {
		if bytes.Equal(c.Contributor, key) {
			return true
		}
	}
	return false
}

// distinctContributors counts the keys that contributed to rec, not its
// contributions (one key contributing N times is one party), and not the
// opener of a phase 2.
func distinctContributors(rec *ledgerv1.CeremonyRecord) int {
	seen := map[string]bool{}
	for _, c := range rec.Contributions {
		if rec.Phase == 2 && bytes.Equal(c.Contributor, rec.Opener) {
			continue
		}
		seen[string(c.Contributor)] = true
	}
	return len(seen)
}

const beaconDomain = "veil/ledger/v1/ceremony-beacon\x00"

// ceremonyBeacon is the beacon of a ceremony: the hash of the head (log
// size, root and state hash) of the block at its beacon height, which was
// fixed at the close, so neither the closer nor the last contributor chose
// it.
func ceremonyBeacon(btx *bolt.Tx, id string, height uint64) []byte {
	head := btx.Bucket(bHeads).Get(u64(height))
	if head == nil {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(beaconDomain))
	writeLP(h, []byte(id))
	writeLP(h, head)
	return h.Sum(nil)
}

func (s *Store) checkCeremonySeal(btx *bolt.Tx, c *ledgerv1.CeremonySeal, index, height uint64) (writeFn, *Rejection) {
	rec, rj := s.getCeremony(btx, c.CeremonyId)
	if rj != nil {
		return nil, rj
	}
	if rec.Sealed {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_ALREADY_SEALED, "ceremony %q is sealed", trunc(c.CeremonyId))
	}
	if rec.CloseHeight == 0 || height <= rec.BeaconHeight {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_BEACON_PENDING, "ceremony %q: close it, then seal after its beacon block (height %d)", trunc(c.CeremonyId), rec.BeaconHeight)
	}
	beacon := ceremonyBeacon(btx, c.CeremonyId, rec.BeaconHeight)
	if beacon == nil {
		return nil, reject(ledgerv1.Code_CODE_CEREMONY_BEACON_PENDING, "the head of the beacon block %d is not stored", rec.BeaconHeight)
	}
	rec.Beacon, rec.Sealed, rec.SealIndex = beacon, true, index
	if rec.Phase == 1 {
		return putCeremony(rec), nil
	}
	p1, rj := s.phase1Transcript(btx)
	if rj != nil {
		return nil, rj
	}
	v, rj := s.ceremonyVerifier()
	if rj != nil {
		return nil, rj
	}
	start, rj := blob(btx, rec.Start.Chunks)
	if rj != nil {
		return nil, rj
	}
	last := start
	if n := len(rec.Contributions); n > 0 {
		if last, rj = blob(btx, rec.Contributions[n-1].Chunks); rj != nil {
			return nil, rj
		}
	}
	vk, err := v.DeriveVerifyingKey(p1, rec.Spec, int(rec.Batch), start, last, beacon)
	if err != nil {
		return nil, ceremonyRejection(fmt.Sprintf("verifying key of %q", trunc(c.CeremonyId)), err)
	}
	vkHash := digest32(vk)
	rec.VerifyingKeyHash = vkHash
	return func(w *writer) error {
		if get(w.tx, bVKs, vkHash) == nil {
			if err := w.put(bVKs, vkHash, vk); err != nil {
				return err
			}
		}
		return putCeremony(rec)(w)
	}, nil
}

// checkRegisterCeremony binds a registration to its ceremony: the key must
// be the one the nodes derived from the sealed transcript of the same spec
// and batch. A registration without a ceremony is accepted only on a chain
// without a phase 1 or with the INSECURE owner-keys parameter.
func (s *Store) checkRegisterCeremony(btx *bolt.Tx, m *ledgerv1.RegisterModel) *Rejection {
	if m.CeremonyId == "" {
		if s.params.Ceremony.Phase1Domain > 0 && !s.params.Ceremony.InsecureOwnerKeys {
			return reject(ledgerv1.Code_CODE_CEREMONY_REQUIRED, "this chain requires a model's key to come from a sealed phase-2 ceremony (name it in ceremony_id)")
		}
		return nil
	}
	rec := &ledgerv1.CeremonyRecord{}
	ok, err := getProto(btx, bCeremonies, []byte(m.CeremonyId), rec)
	if err != nil {
		return reject(ledgerv1.Code_CODE_MALFORMED, "stored ceremony: %v", err)
	}
	if !ok || rec.Phase != 2 {
		return reject(ledgerv1.Code_CODE_UNKNOWN_CEREMONY, "no phase-2 ceremony %q", trunc(m.CeremonyId))
	}
	if !rec.Sealed {
		return reject(ledgerv1.Code_CODE_CEREMONY_NOT_SEALED, "ceremony %q is not sealed", trunc(m.CeremonyId))
	}
	if !bytes.Equal(m.Spec, rec.Spec) || m.ProofBatch != rec.Batch {
		return reject(ledgerv1.Code_CODE_CEREMONY_KEY_MISMATCH, "ceremony %q is for another spec or batch (%d)", trunc(m.CeremonyId), rec.Batch)
	}
	if !bytes.Equal(digest32(m.VerifyingKey), rec.VerifyingKeyHash) {
		return reject(ledgerv1.Code_CODE_CEREMONY_KEY_MISMATCH, "the verifying key is not the one the ledger derived from ceremony %q (%x)", trunc(m.CeremonyId), prefix8(rec.VerifyingKeyHash))
	}
	return nil
}

// Ceremony implements CeremonyAPI.
func (s *Store) Ceremony(_ context.Context, id string) (r *ledgerv1.CeremonyRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		var rj *Rejection
		if r, rj = s.getCeremony(tx, id); rj != nil {
			if rj.Code == ledgerv1.Code_CODE_UNKNOWN_CEREMONY {
				return fmt.Errorf("ceremony %q: %w", id, ErrNotFound)
			}
			return rj
		}
		return nil
	})
	return r, err
}

// Chunk implements CeremonyAPI.
func (s *Store) Chunk(_ context.Context, hash []byte) (b []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if c := get(tx, bChunks, hash); c != nil {
			b = bytes.Clone(c)
			return nil
		}
		return fmt.Errorf("chunk %x: %w", prefix8(hash), ErrNotFound)
	})
	return b, err
}

// CeremonyChunk signs the upload of one chunk.
func (s Signer) CeremonyChunk(data []byte) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonyChunk{CeremonyChunk: &ledgerv1.CeremonyChunk{Data: data}}})
}

// CeremonyContribution signs a contribution.
func (s Signer) CeremonyContribution(c *ledgerv1.CeremonyContribution) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonyContribution{CeremonyContribution: c}})
}

// Phase2Open signs the opening of a phase 2.
func (s Signer) Phase2Open(o *ledgerv1.Phase2Open) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Phase2Open{Phase2Open: o}})
}

// CeremonyClose signs the close of a ceremony.
func (s Signer) CeremonyClose(id string) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonyClose{CeremonyClose: &ledgerv1.CeremonyClose{CeremonyId: id}}})
}

// CeremonySeal signs the seal of a ceremony.
func (s Signer) CeremonySeal(id string) ([]byte, error) {
	return s.sign(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonySeal{CeremonySeal: &ledgerv1.CeremonySeal{CeremonyId: id}}})
}
