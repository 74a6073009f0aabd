package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// DefaultBlocks is k, the blocks a verifiable request uses: one real image
// and k-1 challenges. A server that runs another model on one block goes
// unnoticed with probability 1/k.
const DefaultBlocks = 4

// DefaultTolerance is the largest difference, in score units, accepted
// between a decrypted challenge score and the proven fixed-point score. It
// covers the CKKS error (flooding included) and the intermediate roundings
// of the fixed-point network, with a margin: see docs/protocol.md for the
// measured distribution.
const DefaultTolerance = 0.5

// Verifier is the client's side of the verifiable-inference protocol
// (docs/protocol.md): it hides challenge images among its encrypted inputs,
// commits to them, reveals them once the answer is recorded, checks the
// proven outputs against what it decrypted, and records a verdict.
type Verifier struct {
	Classifier *Classifier
	Ledger     ledger.API
	ChainID    string
	// Key is the client's ed25519 identity: it signs commitments, reveals
	// and verdicts.
	Key ed25519.PrivateKey
	// Pool is the public set challenge images are drawn from (the MNIST
	// training set); each draw is then randomly distorted.
	Pool      *dataset.Set
	Blocks    int     // k; DefaultBlocks when 0
	Tolerance float64 // DefaultTolerance when 0
	// Poll is the interval between ledger queries while waiting (default
	// 100 ms).
	Poll time.Duration
	// Rand, when set, replaces the secure random source for challenges and
	// positions. Only tests set it (reproducible statistical tests); a real
	// client must not, or the server could predict its challenges.
	Rand *mrand.Rand

	record *ledgerv1.ModelRecord
	vk     *zk.VerifyingKey
}

// Request is one verifiable classification.
type Request struct {
	ID         string
	RealBlock  int
	Positions  []uint32 // block of each challenge
	Challenges []dataset.Image
	Salt       []byte
	Commitment [32]byte
	// Scores and Class of the real image (decrypted).
	Scores []float64
	Class  int
	// Decrypted scores of every block.
	Blocks    [][]float64
	Result    *Result
	ReceiptTx []byte
	// ProtocolMS is the client time the protocol adds to the private
	// inference path: drawing challenges, committing, signing, checking
	// the receipt.
	ProtocolMS float64
}

// Outcome is the end of a request: the verdict and what it rests on.
type Outcome struct {
	Accept       bool
	Reason       string
	MaxDiff      float64 // largest |decrypted - proven| over the challenge scores
	ReceiptIndex uint64
	RevealIndex  uint64
	ProofIndex   uint64
	VerdictIndex uint64
}

func (v *Verifier) blocks() int {
	if v.Blocks == 0 {
		return DefaultBlocks
	}
	return v.Blocks
}

func (v *Verifier) tolerance() float64 {
	if v.Tolerance == 0 {
		return DefaultTolerance
	}
	return v.Tolerance
}

func (v *Verifier) poll() time.Duration {
	if v.Poll == 0 {
		return 100 * time.Millisecond
	}
	return v.Poll
}

// registration fetches and checks the model's ledger record: the server's
// advertised commitment must be the registered one.
func (v *Verifier) registration(ctx context.Context) error {
	if v.record != nil {
		return nil
	}
	id := v.Classifier.Info.GetId()
	r, err := v.Ledger.Model(ctx, id, true)
	if err != nil {
		return fmt.Errorf("model %q on the ledger: %w", id, err)
	}
	rec := r.GetModel()
	if c := v.Classifier.Info.GetCommitment(); len(c) > 0 && !bytes.Equal(c, rec.GetCommitment()) {
		return fmt.Errorf("the server advertises commitment %x, the ledger has %x", c, rec.GetCommitment())
	}
	vk, err := zk.UnmarshalVerifyingKey(r.GetVerifyingKey())
	if err != nil {
		return fmt.Errorf("registered verifying key: %w", err)
	}
	if h := vk.Hash(); !bytes.Equal(h[:], rec.GetVerifyingKeyHash()) {
		return errors.New("the registered verifying key does not match its hash")
	}
	v.record, v.vk = rec, vk
	return nil
}

// newRNG returns a generator seeded from the system's secure source, so
// that the server cannot predict the challenges or their positions.
func newRNG() (*mrand.Rand, error) {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("random seed: %w", err)
	}
	return mrand.New(mrand.NewChaCha8(seed)), nil
}

// Classify runs steps 2 and 3 of the protocol: it places img in a random
// block among k-1 fresh challenge images, commits to the challenges, sends
// the ciphertext, checks the server's signed receipt and decrypts. When the
// receipt does not match the exchange it returns the request and an error
// wrapping ErrBadReceipt.
func (v *Verifier) Classify(ctx context.Context, img dataset.Image) (*Request, error) {
	if err := v.registration(ctx); err != nil {
		return nil, err
	}
	layout := v.Classifier.Layout()
	k := v.blocks()
	if k < 2 || k > layout.Blocks {
		return nil, fmt.Errorf("verifiable request: k = %d blocks, need 2..%d", k, layout.Blocks)
	}
	if v.Pool == nil || v.Pool.Len() == 0 {
		return nil, errors.New("verifiable request: no challenge pool")
	}
	t0 := time.Now()
	rng := v.Rand
	if rng == nil {
		var err error
		if rng, err = newRNG(); err != nil {
			return nil, err
		}
	}
	perm := rng.Perm(k)
	req := &Request{RealBlock: perm[0], Salt: make([]byte, 32)}
	images := make([][]uint8, layout.Blocks)
	images[req.RealBlock] = img[:]
	var raw [][]byte
	for _, b := range perm[1:] {
		c := dataset.Augment(v.Pool.Images[rng.IntN(v.Pool.Len())], rng)
		req.Challenges = append(req.Challenges, c)
		req.Positions = append(req.Positions, uint32(b))
		images[b] = req.Challenges[len(req.Challenges)-1][:]
		raw = append(raw, req.Challenges[len(req.Challenges)-1][:])
	}
	if _, err := rand.Read(req.Salt); err != nil {
		return nil, err
	}
	req.Commitment = ledger.ChallengeCommitment(raw, req.Positions, req.Salt)
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return nil, err
	}
	req.ID = hex.EncodeToString(idb)
	modelID := v.Classifier.Info.GetId()
	var inDigest [32]byte
	prep := time.Since(t0)
	res, err := v.Classifier.classify(ctx, images, func(in []byte) (*inferencev1.VerifiableRequest, error) {
		t := time.Now()
		defer func() { prep += time.Since(t) }()
		inDigest = sha256.Sum256(in)
		d := ledger.ClientRequestDigest(modelID, v.Classifier.SessionID(), req.ID, inDigest[:], req.Commitment[:], uint32(k))
		return &inferencev1.VerifiableRequest{
			RequestId: req.ID, ChallengeCommitment: req.Commitment[:], NumBlocks: uint32(k),
			ClientKey: v.Key.Public().(ed25519.PublicKey), ClientSignature: ed25519.Sign(v.Key, d[:]),
		}, nil
	})
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	req.Result, req.Blocks, req.ReceiptTx = res, res.Scores, res.Response.GetReceiptTx()
	if err := v.checkReceipt(req, res, inDigest); err != nil {
		// The request is returned with the error so that the caller can
		// record a rejection (see Reject).
		return req, err
	}
	prep += time.Since(t1)
	req.Scores = res.Scores[req.RealBlock]
	req.Class = model.Class(req.Scores)
	req.ProtocolMS = float64(prep.Microseconds()) / 1000
	return req, nil
}

// ErrBadReceipt reports a receipt that does not match the exchange; the
// client must not reveal its challenges for it.
var ErrBadReceipt = errors.New("the server's receipt does not match the request")

// checkReceipt verifies that the server signed a receipt for exactly this
// exchange: this request, this input, this output, this commitment.
func (v *Verifier) checkReceipt(req *Request, res *Result, inDigest [32]byte) error {
	tx, err := decodeSigned(res.Response.GetReceiptTx())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	rc := tx.body.GetInferenceReceipt()
	out := sha256.Sum256(res.Output)
	switch {
	case rc == nil:
		return fmt.Errorf("%w: not a receipt", ErrBadReceipt)
	case !bytes.Equal(tx.signer, v.record.GetServerKey()):
		return fmt.Errorf("%w: signed by %x, the model's server key is %x", ErrBadReceipt, tx.signer[:8], v.record.GetServerKey()[:min(8, len(v.record.GetServerKey()))])
	case rc.GetRequestId() != req.ID || rc.GetModelId() != v.Classifier.Info.GetId():
		return fmt.Errorf("%w: wrong request or model", ErrBadReceipt)
	case !bytes.Equal(rc.GetInputDigest(), inDigest[:]):
		return fmt.Errorf("%w: input digest differs", ErrBadReceipt)
	case !bytes.Equal(rc.GetOutputDigest(), out[:]):
		return fmt.Errorf("%w: output digest differs from the ciphertext received", ErrBadReceipt)
	case !bytes.Equal(rc.GetChallengeCommitment(), req.Commitment[:]):
		return fmt.Errorf("%w: challenge commitment differs", ErrBadReceipt)
	}
	return nil
}

type signedTx struct {
	signer []byte
	body   *ledgerv1.TxBody
}

// decodeSigned parses a SignedTx and checks its signature.
func decodeSigned(raw []byte) (*signedTx, error) {
	var stx ledgerv1.SignedTx
	if err := proto.Unmarshal(raw, &stx); err != nil {
		return nil, fmt.Errorf("decode transaction: %w", err)
	}
	if len(stx.GetSigner()) != ed25519.PublicKeySize {
		return nil, errors.New("transaction signer is not an ed25519 key")
	}
	d := ledger.SigningDigest(stx.GetBody())
	if !ed25519.Verify(stx.GetSigner(), d[:], stx.GetSignature()) {
		return nil, errors.New("transaction signature does not verify")
	}
	var body ledgerv1.TxBody
	if err := proto.Unmarshal(stx.GetBody(), &body); err != nil {
		return nil, fmt.Errorf("decode transaction body: %w", err)
	}
	return &signedTx{signer: stx.GetSigner(), body: &body}, nil
}

// waitRequest polls the ledger until cond holds for the request record.
func (v *Verifier) waitRequest(ctx context.Context, id string, timeout time.Duration, cond func(*ledgerv1.RequestRecord) bool) (*ledgerv1.RequestRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rec, err := v.Ledger.Request(ctx, id)
		if err == nil && cond(rec) {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(v.poll()):
		}
	}
}

// Reveal runs step 4: once the receipt is on the ledger (the client submits
// the server-signed receipt itself if the server has not), it publishes
// the challenges, their positions and the salt.
func (v *Verifier) Reveal(ctx context.Context, req *Request) (receiptIndex, revealIndex uint64, err error) {
	rec, err := v.waitRequest(ctx, req.ID, 3*time.Second, func(*ledgerv1.RequestRecord) bool { return true })
	if err != nil {
		// Not recorded (yet): record the server-signed receipt ourselves.
		res, serr := v.Ledger.Submit(ctx, req.ReceiptTx)
		if serr != nil {
			return 0, 0, fmt.Errorf("record the receipt: %w", serr)
		}
		rec = &ledgerv1.RequestRecord{ReceiptIndex: res.GetIndex()}
	}
	raw := make([][]byte, len(req.Challenges))
	for i := range req.Challenges {
		raw[i] = req.Challenges[i][:]
	}
	tx, err := ledger.SignTx(v.Key, &ledgerv1.TxBody{ChainId: v.ChainID, Tx: &ledgerv1.TxBody_ChallengeReveal{ChallengeReveal: &ledgerv1.ChallengeReveal{
		RequestId: req.ID, Challenges: raw, Positions: req.Positions, Salt: req.Salt,
	}}})
	if err != nil {
		return 0, 0, err
	}
	res, err := v.Ledger.Submit(ctx, tx)
	if err != nil {
		return rec.GetReceiptIndex(), 0, fmt.Errorf("reveal: %w", err)
	}
	return rec.GetReceiptIndex(), res.GetIndex(), nil
}

// Settle runs step 6: it waits (at most wait) for the proof of the
// revealed challenges, verifies it itself, compares the proven outputs with
// the scores it decrypted from the challenge blocks, and records its
// signed verdict. A missing or invalid proof is a rejection.
func (v *Verifier) Settle(ctx context.Context, req *Request, wait time.Duration) (*Outcome, error) {
	out := &Outcome{}
	rec, err := v.waitRequest(ctx, req.ID, wait, func(r *ledgerv1.RequestRecord) bool {
		return r.GetStatus() == ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		out.Reason = fmt.Sprintf("no proof of the revealed challenges within %v", wait)
	default:
		out.ReceiptIndex, out.RevealIndex, out.ProofIndex = rec.GetReceiptIndex(), rec.GetRevealIndex(), rec.GetProofIndex()
		out.Accept, out.Reason, out.MaxDiff = v.judge(ctx, req, rec)
	}
	if rec != nil {
		out.ReceiptIndex, out.RevealIndex = rec.GetReceiptIndex(), rec.GetRevealIndex()
	}
	idx, err := v.submitVerdict(ctx, req.ID, out.Accept, out.Reason)
	if err != nil {
		return out, fmt.Errorf("record verdict: %w", err)
	}
	out.VerdictIndex = idx
	return out, nil
}

// submitVerdict signs and records the client's verdict on a request.
func (v *Verifier) submitVerdict(ctx context.Context, requestID string, accept bool, reason string) (uint64, error) {
	tx, err := ledger.SignTx(v.Key, &ledgerv1.TxBody{ChainId: v.ChainID, Tx: &ledgerv1.TxBody_Verdict{Verdict: &ledgerv1.Verdict{
		RequestId: requestID, Accept: accept, Reason: reason,
	}}})
	if err != nil {
		return 0, err
	}
	res, err := v.Ledger.Submit(ctx, tx)
	if err != nil {
		return 0, err
	}
	return res.GetIndex(), nil
}

// judge compares the proven outputs with the decrypted challenge scores.
func (v *Verifier) judge(ctx context.Context, req *Request, rec *ledgerv1.RequestRecord) (bool, string, float64) {
	// Check the proof ourselves rather than trusting the node.
	e, err := v.Ledger.Entry(ctx, rec.GetProofIndex())
	if err != nil {
		return false, fmt.Sprintf("cannot read the proof: %v", err), 0
	}
	if err := v.verifyProofTx(ctx, e.GetTx()); err != nil {
		return false, fmt.Sprintf("the recorded proof does not verify: %v", err), 0
	}
	return v.Compare(req, rec.GetOutputs())
}

// Compare checks a request's decrypted challenge scores against the proven
// fixed-point outputs (one row of scores per challenge, in reveal order).
func (v *Verifier) Compare(req *Request, rows []int64) (accept bool, reason string, maxDiff float64) {
	classes := int(v.Classifier.Info.GetClasses())
	if len(rows) != classes*len(req.Challenges) {
		return false, fmt.Sprintf("the proof has %d outputs for this request, want %d", len(rows), classes*len(req.Challenges)), 0
	}
	scale := math.Ldexp(1, -int(v.Classifier.Info.GetOutputFrac()))
	worst := ""
	for i, b := range req.Positions {
		for r := 0; r < classes; r++ {
			d := math.Abs(req.Blocks[b][r] - float64(rows[i*classes+r])*scale)
			if d > maxDiff {
				maxDiff = d
				worst = fmt.Sprintf("challenge %d (block %d) score %d: decrypted %.3f, proven %.3f", i, b, r, req.Blocks[b][r], float64(rows[i*classes+r])*scale)
			}
		}
	}
	if maxDiff > v.tolerance() {
		return false, fmt.Sprintf("decrypted challenge scores differ from the committed model's by %.3f > %.3f: %s", maxDiff, v.tolerance(), worst), maxDiff
	}
	return true, fmt.Sprintf("%d challenges match the committed model within %.3f (tolerance %.3f)", len(req.Challenges), maxDiff, v.tolerance()), maxDiff
}

// verifyProofTx verifies a logged ChallengeProof: the Groth16 proof against
// the registered key and commitment, and the challenge digest recomputed
// from the reveals of every request it covers.
func (v *Verifier) verifyProofTx(ctx context.Context, raw []byte) error {
	tx, err := decodeSigned(raw)
	if err != nil {
		return err
	}
	return verifyProof(ctx, v.Ledger, v.record, v.vk, tx.body.GetChallengeProof())
}

func verifyProof(ctx context.Context, api ledger.API, rec *ledgerv1.ModelRecord, vk *zk.VerifyingKey, cp *ledgerv1.ChallengeProof) error {
	if cp == nil {
		return errors.New("not a challenge proof")
	}
	var images []dataset.Image
	for _, id := range cp.GetRequestIds() {
		r, err := api.Request(ctx, id)
		if err != nil {
			return fmt.Errorf("request %s: %w", id, err)
		}
		e, err := api.Entry(ctx, r.GetRevealIndex())
		if err != nil {
			return fmt.Errorf("reveal of %s: %w", id, err)
		}
		rtx, err := decodeSigned(e.GetTx())
		if err != nil {
			return err
		}
		rv := rtx.body.GetChallengeReveal()
		if rv == nil {
			return fmt.Errorf("entry %d is not a reveal", r.GetRevealIndex())
		}
		for _, c := range rv.GetChallenges() {
			var img dataset.Image
			if len(c) != dataset.Pixels {
				return errors.New("revealed challenge of the wrong size")
			}
			copy(img[:], c)
			images = append(images, img)
		}
	}
	classes := int(rec.GetOutputsPerChallenge())
	if classes == 0 || len(cp.GetOutputs()) != classes*len(images) {
		return fmt.Errorf("%d outputs for %d challenges", len(cp.GetOutputs()), len(images))
	}
	st := zk.Statement{Digest: zk.ChallengeDigest(images)}
	copy(st.Commitment[:], rec.GetCommitment())
	for i := 0; i < len(images); i++ {
		st.Outputs = append(st.Outputs, cp.GetOutputs()[i*classes:(i+1)*classes])
	}
	return zk.Verify(vk, st, cp.GetProof())
}

// Reject records a rejection without waiting for a proof, for a request
// whose receipt is on the ledger but the exchange was wrong (for example the
// receipt does not match the ciphertext received).
func (v *Verifier) Reject(ctx context.Context, requestID, reason string) (uint64, error) {
	if _, err := v.waitRequest(ctx, requestID, 3*time.Second, func(*ledgerv1.RequestRecord) bool { return true }); err != nil {
		return 0, fmt.Errorf("reject: the request is not on the ledger: %w", err)
	}
	idx, err := v.submitVerdict(ctx, requestID, false, reason)
	if err != nil {
		return 0, fmt.Errorf("reject: %w", err)
	}
	return idx, nil
}

// LoadOrCreateIdentity reads the client's ed25519 key from path, or makes
// one (mode 0600).
func LoadOrCreateIdentity(path string) (ed25519.PrivateKey, error) {
	key, _, err := ledger.LoadOrCreateNodeKey(path)
	if err != nil {
		return nil, fmt.Errorf("client identity: %w", err)
	}
	return key, nil
}
