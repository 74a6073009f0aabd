package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// Statement is the public part of a challenge proof: the model commitment,
// the digest of the revealed challenge images (in proof order), and the
// claimed fixed-point outputs, one row per challenge.
type Statement struct {
	Commitment      []byte
	ChallengeDigest []byte
	Outputs         [][]int64
}

// ModelSpec is what the ledger learns from a registered model spec (see
// ProofVerifier.CheckModel).
type ModelSpec struct {
	ID         [32]byte // the circuit id: SHA-256 of the canonical spec
	Classes    int      // outputs per challenge
	OutputFrac int      // scores are integers / 2^OutputFrac
	Tolerance  int64    // comparison tolerance, in integer score units
}

// ProofVerifier is what the ledger needs from the zk package. Every method
// must be a deterministic function of its arguments (they are consensus
// rules) and safe for concurrent use.
type ProofVerifier interface {
	// ChallengeDigest is the statement's digest of the challenge images.
	ChallengeDigest(images [][]byte) ([]byte, error)
	// VerifyChallengeProof returns nil if proof is a valid proof of st under
	// the verifying key vk, and an error saying why not otherwise.
	VerifyChallengeProof(vk []byte, st Statement, proof []byte) error
	// CheckModel parses a registered spec and checks that vk is a
	// verifying key for the circuit the spec determines, proving batch
	// challenge images per proof. RegisterModel is refused
	// (CODE_SPEC_MISMATCH) when it fails.
	CheckModel(spec, vk []byte, batch int) (ModelSpec, error)
}

// VerifyCache remembers the results of proof verifications, so a proof
// verified in parallel before a block (embedded driver), or in CheckTx and
// ProcessProposal (CometBFT driver), is not verified again when the block
// is applied. Verification is a pure function of (vk, statement, proof), so
// a cached result is the result.
type VerifyCache struct {
	v   ProofVerifier
	max int

	mu      sync.Mutex
	results map[[32]byte]error
	digests map[[32]byte][]byte
	hits    uint64
	misses  uint64
}

// NewVerifyCache wraps v with a cache of up to max results.
func NewVerifyCache(v ProofVerifier, max int) *VerifyCache {
	if max <= 0 {
		max = 4096
	}
	return &VerifyCache{v: v, max: max, results: make(map[[32]byte]error), digests: make(map[[32]byte][]byte)}
}

// ChallengeDigest implements ProofVerifier. Digests are cached by the
// SHA-256 of the images: the zk digest (Poseidon2) costs a fraction of a
// millisecond, and the embedded driver computes it once in parallel and
// once more in the sequential apply.
func (c *VerifyCache) ChallengeDigest(images [][]byte) ([]byte, error) {
	h := sha256.New()
	for _, im := range images {
		writeLP(h, im)
	}
	var k [32]byte
	h.Sum(k[:0])
	c.mu.Lock()
	d, ok := c.digests[k]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := c.v.ChallengeDigest(images)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.digests) >= c.max {
		clear(c.digests)
	}
	c.digests[k] = d
	c.mu.Unlock()
	return d, nil
}

// CheckModel implements ProofVerifier (uncached: registrations are rare).
func (c *VerifyCache) CheckModel(spec, vk []byte, batch int) (ModelSpec, error) {
	return c.v.CheckModel(spec, vk, batch)
}

// VerifyChallengeProof implements ProofVerifier.
func (c *VerifyCache) VerifyChallengeProof(vk []byte, st Statement, proof []byte) error {
	return c.verifyFor([32]byte{}, vk, st, proof)
}

// verifyFor caches per transaction (scope is the signed body's hash): the
// same transaction seen in CheckTx, ProcessProposal and FinalizeBlock, or
// pre-verified and then applied, is verified once, while two transactions
// carrying the same proof bytes are each verified (it keeps the cache
// honest about cost, and a proof is only useful once per request anyway).
func (c *VerifyCache) verifyFor(scope [32]byte, vk []byte, st Statement, proof []byte) error {
	k := verifyKey(vk, st, proof)
	for i := range k {
		k[i] ^= scope[i]
	}
	c.mu.Lock()
	if err, ok := c.results[k]; ok {
		c.hits++
		c.mu.Unlock()
		return err
	}
	c.misses++
	c.mu.Unlock()
	err := c.v.VerifyChallengeProof(vk, st, proof)
	c.mu.Lock()
	if len(c.results) >= c.max {
		// Dropping everything is crude but bounded and cheap; a miss only
		// costs one more verification.
		clear(c.results)
	}
	c.results[k] = err
	c.mu.Unlock()
	return err
}

// Stats returns the cache hits and misses so far.
func (c *VerifyCache) Stats() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

func verifyKey(vk []byte, st Statement, proof []byte) [32]byte {
	h := sha256.New()
	writeLP(h, vk)
	writeLP(h, st.Commitment)
	writeLP(h, st.ChallengeDigest)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(st.Outputs)))
	h.Write(n[:])
	for _, row := range st.Outputs {
		binary.BigEndian.PutUint64(n[:], uint64(len(row)))
		h.Write(n[:])
		for _, v := range row {
			binary.BigEndian.PutUint64(n[:], uint64(v))
			h.Write(n[:])
		}
	}
	writeLP(h, proof)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// StatementHash is a deterministic hash of a statement, used by test
// doubles and by anyone who needs to name a statement.
func StatementHash(vk []byte, st Statement) [32]byte { return verifyKey(vk, st, nil) }
