package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Result is the outcome of one transaction in a block.
type Result struct {
	Code   ledgerv1.Code
	Reason string
	TxHash [32]byte
	Index  uint64 // log index, when accepted (or of the earlier copy, for CODE_DUPLICATE_TX)
	Height uint64
}

// OK reports whether the transaction was accepted.
func (r Result) OK() bool { return r.Code == ledgerv1.Code_CODE_OK }

// Err returns nil for an accepted transaction and a *Rejection otherwise.
func (r Result) Err() error {
	if r.OK() {
		return nil
	}
	return &Rejection{Code: r.Code, Reason: r.Reason}
}

// Block is one bbolt write transaction: transactions applied to it are
// visible to later transactions in the same block, and all of it becomes
// durable at Commit (one fsync) or disappears at Discard.
type Block struct {
	s      *Store
	tx     *bolt.Tx
	height uint64
	st     *logState
	writes hash.Hash // every state write of this block, in order
	nwrite int
	done   bool
	cp     *ledgerv1.Checkpoint
}

// Begin starts block height. Only one block is open at a time; Begin waits
// for the previous one to commit or be discarded.
func (s *Store) Begin(height uint64) (*Block, error) {
	s.blockMu.Lock()
	tx, err := s.db.Begin(true)
	if err != nil {
		s.blockMu.Unlock()
		return nil, fmt.Errorf("begin ledger block: %w", err)
	}
	st, err := readState(tx)
	if err != nil {
		tx.Rollback()
		s.blockMu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	b := &Block{s: s, tx: tx, height: height, st: st, writes: sha256.New()}
	if err := b.beginMarket(); err != nil { // market.go: escrows due at this height
		b.Discard()
		return nil, fmt.Errorf("begin ledger block %d: %w", height, err)
	}
	return b, nil
}

// Height returns the block's height.
func (b *Block) Height() uint64 { return b.height }

// Size returns the log size including the transactions accepted so far.
func (b *Block) Size() uint64 { return b.st.size }

// Apply decodes and applies one transaction. A non-nil error is an I/O
// failure that makes the whole block unusable (Discard it); a rejected
// transaction is a Result with a non-OK code and leaves no trace.
func (b *Block) Apply(raw []byte) (Result, error) {
	tx, rj := DecodeTx(b.s.chainID, raw)
	if rj != nil {
		return Result{Code: rj.Code, Reason: rj.Reason, TxHash: TxHash(raw), Height: b.height}, nil
	}
	return b.ApplyTx(tx)
}

// ApplyTx applies a transaction already checked by DecodeTx (for the same
// chain id).
func (b *Block) ApplyTx(tx *Tx) (res Result, err error) {
	defer recoverCorrupt(&err)
	if b.cp != nil || b.done {
		return res, errors.New("block is finished")
	}
	res = Result{TxHash: tx.Hash, Height: b.height}
	index := b.st.size
	write, rj := b.s.check(b.tx, tx, index, b.height)
	if rj != nil {
		res.Code, res.Reason, res.Index = rj.Code, rj.Reason, rj.Index
		return res, nil
	}
	w := &writer{tx: b.tx, h: b.writes, n: &b.nwrite}
	if err := write(w); err != nil {
		return res, fmt.Errorf("apply transaction %x: %w", tx.Hash[:8], err)
	}
	if err := w.put(bSeen, tx.BodyHash[:], append(tx.Hash[:], u64(index)...)); err != nil {
		return res, err
	}
	if err := b.appendLeaf(tx.Raw); err != nil {
		return res, err
	}
	res.Index = index
	return res, nil
}

func (b *Block) appendLeaf(raw []byte) error {
	index := b.st.size
	if err := b.tx.Bucket(bTxs).Put(u64(index), raw); err != nil {
		return fmt.Errorf("log append: %w", err)
	}
	nodes := b.tx.Bucket(bNodes)
	var perr error
	err := b.st.rng.Append(hasher.HashLeaf(raw), func(id compact.NodeID, h []byte) {
		if perr == nil {
			perr = nodes.Put(nodeKey(id), h)
		}
	})
	if err = errors.Join(err, perr); err != nil {
		return fmt.Errorf("log append: %w", err)
	}
	b.st.size++
	return nil
}

// Finish computes the new state hash, log root and app hash, stores them
// with a checkpoint signed by the node key, and returns the checkpoint. No
// more transactions can be applied after Finish.
func (b *Block) Finish() (*ledgerv1.Checkpoint, error) {
	if b.cp != nil {
		return b.cp, nil
	}
	if b.nwrite > 0 {
		h := sha256.New()
		h.Write(b.st.stateHash)
		h.Write(b.writes.Sum(nil))
		b.st.stateHash = h.Sum(nil)
	}
	root, err := rootOf(b.st.rng)
	if err != nil {
		return nil, err
	}
	var rb []byte
	for _, h := range b.st.rng.Hashes() {
		rb = append(rb, h...)
	}
	cp := SignCheckpoint(b.s.key, b.s.origin, b.st.size, root, b.height, b.st.stateHash)
	meta := b.tx.Bucket(bMeta)
	head := append(append(u64(b.st.size), root...), b.st.stateHash...)
	if err := errors.Join(meta.Put(kHeight, u64(b.height)), meta.Put(kSize, u64(b.st.size)), meta.Put(kRange, rb),
		meta.Put(kStateHash, b.st.stateHash), putProto(meta, kCheckpoint, cp), b.tx.Bucket(bHeads).Put(u64(b.height), head)); err != nil {
		return nil, fmt.Errorf("store block meta: %w", err)
	}
	b.cp = cp
	return cp, nil
}

// Commit makes the block durable: bbolt writes the pages, fsyncs, then
// writes and fsyncs the meta page, so a crash at any point leaves either
// the previous block or this one, never a mix.
func (b *Block) Commit() error {
	if b.done {
		return errors.New("block already committed or discarded")
	}
	if _, err := b.Finish(); err != nil {
		b.Discard()
		return err
	}
	b.done = true
	defer b.s.blockMu.Unlock()
	if hook := b.s.opts.beforeCommit; hook != nil {
		if err := hook(); err != nil {
			b.tx.Rollback()
			return fmt.Errorf("commit ledger block %d: %w", b.height, err)
		}
	}
	if err := b.tx.Commit(); err != nil {
		return fmt.Errorf("commit ledger block %d: %w", b.height, err)
	}
	return nil
}

// Discard drops the block. Safe to call after Commit (it does nothing).
func (b *Block) Discard() {
	if b.done {
		return
	}
	b.done = true
	b.tx.Rollback()
	b.s.blockMu.Unlock()
}

// writer puts state records and feeds each write into the block's state
// hash, in application order (deterministic on every node).
type writer struct {
	tx *bolt.Tx
	h  hash.Hash
	n  *int
}

func (w *writer) put(bucket, k, v []byte) error {
	writeLP(w.h, bucket)
	writeLP(w.h, k)
	writeLP(w.h, v)
	*w.n++
	if err := w.tx.Bucket(bucket).Put(k, seal(bucket, k, v)); err != nil {
		return fmt.Errorf("put %s/%x: %w", bucket, k, err)
	}
	return nil
}

// del removes a state record; the deletion feeds the state hash like a
// write (with a marker no value can take), so two nodes that disagree on
// a deletion disagree on the state hash.
func (w *writer) del(bucket, k []byte) error {
	writeLP(w.h, bucket)
	writeLP(w.h, k)
	w.h.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // no length prefix is this large
	*w.n++
	if err := w.tx.Bucket(bucket).Delete(k); err != nil {
		return fmt.Errorf("delete %s/%x: %w", bucket, k, err)
	}
	return nil
}

func (w *writer) putProto(bucket, k []byte, m proto.Message) error {
	v, err := canonical.Marshal(m)
	if err != nil {
		return err
	}
	return w.put(bucket, k, v)
}

type writeFn func(w *writer) error

// Check validates tx against the committed state without applying it (the
// CometBFT CheckTx path). It runs concurrently with blocks.
func (s *Store) Check(raw []byte) Result {
	tx, rj := DecodeTx(s.chainID, raw)
	if rj != nil {
		return Result{Code: rj.Code, Reason: rj.Reason, TxHash: TxHash(raw)}
	}
	return s.CheckTx(tx)
}

// CheckTx is Check for an already decoded transaction.
func (s *Store) CheckTx(tx *Tx) Result {
	res := Result{TxHash: tx.Hash}
	err := s.view(func(btx *bolt.Tx) error {
		st, err := readState(btx)
		if err != nil {
			return err
		}
		_, rj := s.check(btx, tx, st.size, st.height+1)
		if rj != nil {
			res.Code, res.Reason, res.Index = rj.Code, rj.Reason, rj.Index
		}
		return nil
	})
	if err != nil {
		res.Code, res.Reason = ledgerv1.Code_CODE_MALFORMED, "ledger store: "+err.Error()
	}
	return res
}

// check runs every stateful rule for tx at log index against the state
// visible in btx, and returns the writes to make if it is accepted. It
// writes nothing itself, which is what makes a transaction all-or-nothing.
func (s *Store) check(btx *bolt.Tx, tx *Tx, index, height uint64) (writeFn, *Rejection) {
	if v := get(btx, bSeen, tx.BodyHash[:]); v != nil {
		if bytes.Equal(v[:32], tx.Hash[:]) {
			rj := reject(ledgerv1.Code_CODE_DUPLICATE_TX, "transaction already in the log at index %d", binary.BigEndian.Uint64(v[32:]))
			rj.Index = binary.BigEndian.Uint64(v[32:])
			return nil, rj
		}
		return nil, reject(ledgerv1.Code_CODE_REPLAYED_SIGNATURE, "this signed body is already in the log at index %d", binary.BigEndian.Uint64(v[32:]))
	}
	acct, rj := s.chargeFee(btx, tx) // market.go: every transaction pays its fee first
	if rj != nil {
		return nil, rj
	}
	write, rj := s.checkBody(btx, tx, acct, index, height)
	if rj != nil {
		return nil, rj
	}
	return acct.then(write), nil
}

// checkBody runs the rules of tx's type; acct holds the transaction's
// balance changes (its fee is already taken).
func (s *Store) checkBody(btx *bolt.Tx, tx *Tx, acct *book, index, height uint64) (writeFn, *Rejection) {
	switch t := tx.Body.Tx.(type) {
	case *ledgerv1.TxBody_RegisterModel:
		return s.checkRegister(btx, tx, t.RegisterModel, index)
	case *ledgerv1.TxBody_SetupContribution:
		return s.checkSetup(btx, t.SetupContribution, index)
	case *ledgerv1.TxBody_InferenceReceipt:
		return s.checkReceipt(btx, tx, acct, t.InferenceReceipt, index, height)
	case *ledgerv1.TxBody_ChallengeReveal:
		return s.checkReveal(btx, tx, t.ChallengeReveal, index, height)
	case *ledgerv1.TxBody_ChallengeProof:
		return s.checkProof(btx, tx, t.ChallengeProof, index, height)
	case *ledgerv1.TxBody_Verdict:
		return s.checkVerdict(btx, tx, acct, t.Verdict, index, height)
	case *ledgerv1.TxBody_Transfer, *ledgerv1.TxBody_ProviderOffer, *ledgerv1.TxBody_Unbond, *ledgerv1.TxBody_Withdraw, *ledgerv1.TxBody_Dispute:
		return s.checkMarket(btx, tx, acct, index, height) // market.go
	}
	if w, rj, ok := s.checkTraining(btx, tx, index); ok {
		return w, rj
	}
	if w, rj, ok := s.checkCeremony(btx, tx, index, height); ok { // ceremony.go
		return w, rj
	}
	return nil, reject(ledgerv1.Code_CODE_MALFORMED, "unknown transaction type")
}

func getModel(btx *bolt.Tx, id string) (*ledgerv1.ModelRecord, *Rejection) {
	m := &ledgerv1.ModelRecord{}
	ok, err := getProto(btx, bModels, []byte(id), m)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored model: %v", err)
	}
	if !ok {
		return nil, reject(ledgerv1.Code_CODE_UNKNOWN_MODEL, "model %q is not registered", trunc(id))
	}
	return m, nil
}

func getRequest(btx *bolt.Tx, key []byte) (*ledgerv1.RequestRecord, *Rejection) {
	r := &ledgerv1.RequestRecord{}
	ok, err := getProto(btx, bRequests, key, r)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored request: %v", err)
	}
	if !ok {
		return nil, reject(ledgerv1.Code_CODE_UNKNOWN_REQUEST, "request %x has no receipt", key[:min(8, len(key))])
	}
	return r, nil
}

// requestOf finds the request a reveal or verdict signed by signer is
// about: its key binds the model and the client key, so a client can only
// ever address its own requests.
func requestOf(btx *bolt.Tx, modelID string, signer []byte, requestID string) ([]byte, *ledgerv1.RequestRecord, *Rejection) {
	k := RequestKey(modelID, signer, requestID)
	rec, rj := getRequest(btx, k[:])
	if rj != nil {
		return nil, nil, rj
	}
	return k[:], rec, nil
}

func (s *Store) checkRegister(btx *bolt.Tx, tx *Tx, m *ledgerv1.RegisterModel, index uint64) (writeFn, *Rejection) {
	if get(btx, bModels, []byte(m.ModelId)) != nil {
		return nil, reject(ledgerv1.Code_CODE_MODEL_EXISTS, "model %q is already registered", trunc(m.ModelId))
	}
	consent := ServerConsentDigest(s.chainID, tx.Signer, m)
	if !ed25519.Verify(m.ServerKey, consent[:], m.ServerSignature) {
		return nil, reject(ledgerv1.Code_CODE_SERVER_NOT_CONSENTING, "the server key %x did not co-sign this registration", m.ServerKey[:8])
	}
	if rj := s.checkRegisterCeremony(btx, m); rj != nil { // ceremony.go
		return nil, rj
	}
	spec, err := s.verifier.CheckModel(m.Spec, m.VerifyingKey, int(m.ProofBatch))
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_SPEC_MISMATCH, "%v", err)
	}
	if int(m.OutputsPerChallenge) != spec.Classes {
		return nil, reject(ledgerv1.Code_CODE_SPEC_MISMATCH, "outputs_per_challenge %d, the spec has %d classes", m.OutputsPerChallenge, spec.Classes)
	}
	vkHash := digest32(m.VerifyingKey)
	rec := &ledgerv1.ModelRecord{
		ModelId: m.ModelId, Architecture: m.Architecture, Commitment: m.Commitment, VerifyingKeyHash: vkHash,
		OwnerKey: tx.Signer, ServerKey: m.ServerKey, OutputsPerChallenge: m.OutputsPerChallenge, CeremonyId: m.CeremonyId, Index: index,
		SpecId: spec.ID[:], OutputFrac: int32(spec.OutputFrac), Tolerance: spec.Tolerance, ProofBatch: m.ProofBatch,
	}
	return func(w *writer) error {
		if get(w.tx, bVKs, vkHash) == nil {
			if err := w.put(bVKs, vkHash, m.VerifyingKey); err != nil {
				return err
			}
		}
		return w.putProto(bModels, []byte(m.ModelId), rec)
	}, nil
}

func setupKey(ceremony string, phase uint32) []byte {
	return append(append([]byte(ceremony), 0), byte(phase))
}

func (s *Store) checkSetup(btx *bolt.Tx, c *ledgerv1.SetupContribution, index uint64) (writeFn, *Rejection) {
	k := setupKey(c.CeremonyId, c.Phase)
	rec := &ledgerv1.SetupRecord{CeremonyId: c.CeremonyId, Phase: c.Phase, LastHash: make([]byte, 32)}
	if _, err := getProto(btx, bSetup, k, rec); err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored setup: %v", err)
	}
	if c.Index != rec.Contributions || !bytes.Equal(c.PreviousHash, rec.LastHash) {
		return nil, reject(ledgerv1.Code_CODE_SETUP_OUT_OF_ORDER, "ceremony %q phase %d expects contribution %d after %x", trunc(c.CeremonyId), c.Phase, rec.Contributions, rec.LastHash[:8])
	}
	rec.Contributions++
	rec.LastHash = c.ContributionHash
	rec.Indexes = append(rec.Indexes, index)
	return func(w *writer) error { return w.putProto(bSetup, k, rec) }, nil
}

func byModelKey(model string, index uint64) []byte {
	k := binary.BigEndian.AppendUint16(nil, uint16(len(model)))
	k = append(k, model...)
	return append(k, u64(index)...)
}

func (s *Store) checkReceipt(btx *bolt.Tx, tx *Tx, acct *book, r *ledgerv1.InferenceReceipt, index, height uint64) (writeFn, *Rejection) {
	m, rj := getModel(btx, r.ModelId)
	if rj != nil {
		return nil, rj
	}
	if !bytes.Equal(tx.Signer, m.ServerKey) {
		return nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "receipts for model %q must be signed by its server key", trunc(r.ModelId))
	}
	if r.NumBlocks-1 > m.ProofBatch {
		return nil, reject(ledgerv1.Code_CODE_TOO_MANY_CHALLENGES, "%d blocks: model %q proves at most %d challenges per request, so at most %d blocks", r.NumBlocks, trunc(r.ModelId), m.ProofBatch, m.ProofBatch+1)
	}
	key := RequestKey(r.ModelId, r.ClientKey, r.RequestId)
	if get(btx, bRequests, key[:]) != nil {
		return nil, reject(ledgerv1.Code_CODE_DUPLICATE_REQUEST, "request %q of this client already has a receipt", trunc(r.RequestId))
	}
	rec := &ledgerv1.RequestRecord{
		RequestId: r.RequestId, ModelId: r.ModelId, KeysDigest: r.KeysDigest, ReceiptIndex: index, RequestKey: key[:],
		InputDigest: r.InputDigest, OutputDigest: r.OutputDigest, ChallengeCommitment: r.ChallengeCommitment,
		NumBlocks: r.NumBlocks, ClientKey: r.ClientKey, Status: ledgerv1.RequestStatus_REQUEST_STATUS_RECEIPTED,
		ReceiptHeight: height, ProofDeadline: height + s.params.ProofDeadlineBlocks,
	}
	m.Receipts++
	escrow, rj := s.lockEscrow(btx, acct, r, key[:], m.ServerKey, rec.ProofDeadline, index, height) // market.go
	if rj != nil {
		return nil, rj
	}
	return func(w *writer) error {
		return errors.Join(joinWrites(escrow)(w), w.putProto(bRequests, key[:], rec),
			w.put(bByModel, byModelKey(r.ModelId, index), key[:]),
			w.put(bReceipts, u64(index), key[:]),
			w.putProto(bModels, []byte(m.ModelId), m))
	}, nil
}

func (s *Store) checkReveal(btx *bolt.Tx, tx *Tx, r *ledgerv1.ChallengeReveal, index, height uint64) (writeFn, *Rejection) {
	key, rec, rj := requestOf(btx, r.ModelId, tx.Signer, r.RequestId)
	if rj != nil {
		return nil, rj
	}
	if rec.Status >= ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
		return nil, reject(ledgerv1.Code_CODE_ALREADY_REVEALED, "request %q was revealed at index %d", trunc(r.RequestId), rec.RevealIndex)
	}
	if rec.HasVerdict {
		return nil, reject(ledgerv1.Code_CODE_DUPLICATE_VERDICT, "request %q already has a verdict", trunc(r.RequestId))
	}
	if uint32(len(r.Challenges)) >= rec.NumBlocks {
		return nil, reject(ledgerv1.Code_CODE_INVALID_FIELD, "%d challenges for %d blocks: at least one block is the client's own", len(r.Challenges), rec.NumBlocks)
	}
	used := make(map[uint32]bool, len(r.Positions))
	for _, p := range r.Positions {
		if p >= rec.NumBlocks || used[p] {
			return nil, reject(ledgerv1.Code_CODE_INVALID_FIELD, "challenge positions must be distinct and below %d", rec.NumBlocks)
		}
		used[p] = true
	}
	if c := ChallengeCommitment(r.Challenges, r.Positions, r.Salt); !bytes.Equal(c[:], rec.ChallengeCommitment) {
		return nil, reject(ledgerv1.Code_CODE_COMMITMENT_MISMATCH, "revealed challenges do not open the commitment in receipt %d", rec.ReceiptIndex)
	}
	rec.Status = ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED
	rec.RevealIndex = index
	rec.NumChallenges = uint32(len(r.Challenges))
	rec.Positions = r.Positions
	// The server gets a full deadline from the reveal to prove.
	rec.ProofDeadline = height + s.params.ProofDeadlineBlocks
	escrow, rj := s.marketRevealed(btx, key, rec.ProofDeadline) // market.go
	if rj != nil {
		return nil, rj
	}
	images := bytes.Join(r.Challenges, nil)
	return func(w *writer) error {
		return errors.Join(joinWrites(escrow)(w), w.put(bReveals, key, images), w.putProto(bRequests, key, rec),
			w.put(bPending, byModelKey(rec.ModelId, index), key))
	}, nil
}

// PadChallenges pads a proof's challenge images to the circuit's batch by
// repeating the last one, so that any number of revealed challenges up to
// the batch can be proven at once. The ledger pads the same way before it
// computes the digest the proof must be about.
func PadChallenges(images [][]byte, batch int) [][]byte {
	out := images
	for len(out) > 0 && len(out) < batch {
		out = append(out, out[len(out)-1])
	}
	return out
}

// resolveProof gathers the statement a proof must satisfy from the state:
// the model's verifying key and commitment, and the digest of the revealed
// challenges of the listed requests, in order, padded to the model's batch.
func (s *Store) resolveProof(btx *bolt.Tx, tx *Tx, p *ledgerv1.ChallengeProof) (*ledgerv1.ModelRecord, []*ledgerv1.RequestRecord, []byte, Statement, *Rejection) {
	fail := func(rj *Rejection) (*ledgerv1.ModelRecord, []*ledgerv1.RequestRecord, []byte, Statement, *Rejection) {
		return nil, nil, nil, Statement{}, rj
	}
	m, rj := getModel(btx, p.ModelId)
	if rj != nil {
		return fail(rj)
	}
	if !bytes.Equal(tx.Signer, m.ServerKey) {
		return fail(reject(ledgerv1.Code_CODE_UNAUTHORIZED, "proofs for model %q must be signed by its server key", trunc(p.ModelId)))
	}
	var recs []*ledgerv1.RequestRecord
	var images [][]byte
	for _, key := range p.RequestKeys {
		rec, rj := getRequest(btx, key)
		if rj != nil {
			return fail(rj)
		}
		if rec.ModelId != p.ModelId {
			return fail(reject(ledgerv1.Code_CODE_BAD_REQUEST_KEY, "request %x is for model %q", key[:8], trunc(rec.ModelId)))
		}
		switch rec.Status {
		case ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN:
			return fail(reject(ledgerv1.Code_CODE_ALREADY_PROVEN, "request %x was proven at index %d", key[:8], rec.ProofIndex))
		case ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED:
		default:
			return fail(reject(ledgerv1.Code_CODE_NOT_REVEALED, "request %x has no challenge reveal yet", key[:8]))
		}
		blob := get(btx, bReveals, key)
		if len(blob) != int(rec.NumChallenges)*ChallengeImageBytes {
			return fail(reject(ledgerv1.Code_CODE_MALFORMED, "stored reveal of %x is damaged", key[:8]))
		}
		for i := 0; i < len(blob); i += ChallengeImageBytes {
			images = append(images, bytes.Clone(blob[i:i+ChallengeImageBytes]))
		}
		recs = append(recs, rec)
	}
	batch := int(m.ProofBatch)
	if len(images) > batch {
		return fail(reject(ledgerv1.Code_CODE_TOO_MANY_CHALLENGES, "%d challenges, one proof of model %q covers at most %d", len(images), trunc(p.ModelId), batch))
	}
	images = PadChallenges(images, batch)
	per := int(m.OutputsPerChallenge)
	if len(p.Outputs) != len(images)*per {
		return fail(reject(ledgerv1.Code_CODE_BAD_OUTPUTS, "%d outputs for %d (padded) challenges x %d scores", len(p.Outputs), len(images), per))
	}
	outputs := make([][]int64, len(images))
	for i := range outputs {
		outputs[i] = p.Outputs[i*per : (i+1)*per]
	}
	digest, err := s.verifier.ChallengeDigest(images)
	if err != nil {
		return fail(reject(ledgerv1.Code_CODE_PROOF_INVALID, "challenge digest: %v", err))
	}
	vk := get(btx, bVKs, m.VerifyingKeyHash)
	if vk == nil {
		return fail(reject(ledgerv1.Code_CODE_MALFORMED, "verifying key of model %q is missing from the store", trunc(p.ModelId)))
	}
	return m, recs, bytes.Clone(vk), Statement{Commitment: m.Commitment, ChallengeDigest: digest, Outputs: outputs}, nil
}

func (s *Store) checkProof(btx *bolt.Tx, tx *Tx, p *ledgerv1.ChallengeProof, index, height uint64) (writeFn, *Rejection) {
	m, recs, vk, st, rj := s.resolveProof(btx, tx, p)
	if rj != nil {
		return nil, rj
	}
	if err := s.verifier.verifyFor(tx.BodyHash, vk, st, p.Proof); err != nil {
		return nil, reject(ledgerv1.Code_CODE_PROOF_INVALID, "%v", err)
	}
	per := int(m.OutputsPerChallenge)
	row := 0
	pending := make([][]byte, len(recs))
	for i, rec := range recs {
		n := int(rec.NumChallenges) * per
		pending[i] = byModelKey(rec.ModelId, rec.RevealIndex)
		rec.Status = ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN
		rec.ProofIndex = index
		rec.Outputs = p.Outputs[row : row+n]
		row += n
	}
	m.Proofs++
	escrows, rj := s.marketProven(btx, recs, p.ModelId, height) // market.go
	if rj != nil {
		return nil, rj
	}
	return func(w *writer) error {
		if err := joinWrites(escrows)(w); err != nil {
			return err
		}
		for i, rec := range recs {
			if err := errors.Join(w.putProto(bRequests, rec.RequestKey, rec), w.del(bPending, pending[i])); err != nil {
				return err
			}
		}
		return w.putProto(bModels, []byte(m.ModelId), m)
	}, nil
}

// Prewarm verifies a proof transaction against the committed state so the
// result is cached before the block that applies it (the embedded driver
// calls it on both cores). It changes nothing; a transaction whose
// statement cannot be resolved yet (say, its reveal is in the same batch)
// is simply verified later, during apply.
func (s *Store) Prewarm(tx *Tx) {
	if !s.canPay(tx) || s.prewarmDispute(tx) { // market.go
		return
	}
	p, ok := tx.Body.Tx.(*ledgerv1.TxBody_ChallengeProof)
	if !ok {
		return
	}
	_ = s.view(func(btx *bolt.Tx) error {
		_, _, vk, st, rj := s.resolveProof(btx, tx, p.ChallengeProof)
		if rj == nil {
			_ = s.verifier.verifyFor(tx.BodyHash, vk, st, p.ChallengeProof.Proof)
		}
		return nil
	})
}

// checkVerdict records the client's verdict. It is accepted only once the
// request is proven or its proof deadline has passed: a client cannot
// reject a request before the server had its chance to prove it.
func (s *Store) checkVerdict(btx *bolt.Tx, tx *Tx, acct *book, v *ledgerv1.Verdict, index, height uint64) (writeFn, *Rejection) {
	key, rec, rj := requestOf(btx, v.ModelId, tx.Signer, v.RequestId)
	if rj != nil {
		return nil, rj
	}
	if rec.HasVerdict {
		return nil, reject(ledgerv1.Code_CODE_DUPLICATE_VERDICT, "request %q has a verdict at index %d", trunc(v.RequestId), rec.VerdictIndex)
	}
	if rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN && height <= rec.ProofDeadline {
		return nil, reject(ledgerv1.Code_CODE_VERDICT_TOO_EARLY, "request %q is not proven and its proof deadline (height %d) has not passed (height %d)", trunc(v.RequestId), rec.ProofDeadline, height)
	}
	if rj := verdictFitsState(v.Reason, rec.Status); rj != nil {
		return nil, rj
	}
	rec.HasVerdict, rec.VerdictIndex, rec.VerdictAccept, rec.VerdictReason = true, index, v.Accept, v.Reason
	escrow, rj := s.marketVerdict(btx, acct, key, v.Accept, height) // market.go
	if rj != nil {
		return nil, rj
	}
	return func(w *writer) error {
		if err := errors.Join(joinWrites(escrow)(w), w.putProto(bRequests, key, rec)); err != nil {
			return err
		}
		if rec.Status == ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
			// Judged without a proof: it is no longer the prover's to do.
			return w.del(bPending, byModelKey(rec.ModelId, rec.RevealIndex))
		}
		return nil
	}, nil
}

// verdictFitsState checks that a verdict's reason is one the request's
// state allows, so that the reason itself is a checked fact: NO_PROOF only
// for a revealed request whose deadline passed without a proof, BAD_RECEIPT
// only for a request never revealed, and a judgement of the outputs only
// for a proven request.
func verdictFitsState(r ledgerv1.VerdictReason, s ledgerv1.RequestStatus) *Rejection {
	ok := false
	switch s {
	case ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN:
		ok = r == ledgerv1.VerdictReason_VERDICT_REASON_MATCH || r == ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER || r == ledgerv1.VerdictReason_VERDICT_REASON_BAD_PROOF
	case ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED:
		ok = r == ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF
	case ledgerv1.RequestStatus_REQUEST_STATUS_RECEIPTED:
		ok = r == ledgerv1.VerdictReason_VERDICT_REASON_BAD_RECEIPT
	}
	if !ok {
		return reject(ledgerv1.Code_CODE_VERDICT_REASON_MISMATCH, "a %s verdict does not fit a request in state %s", r, s)
	}
	return nil
}
