package protocol

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
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// DefaultBlocks is k, the blocks a verifiable request uses: one real image
// and k-1 challenges. A server that runs another model on one block goes
// unnoticed with probability 1/k.
const DefaultBlocks = 4

// pollInterval is how often a party looks at the ledger while it waits.
const pollInterval = 100 * time.Millisecond

// Client is the client's side of the verifiable-inference protocol
// (docs/protocol.md): it hides challenge images among its encrypted inputs,
// commits to them, reveals them once the answer is recorded, checks the
// proven outputs against what it decrypted, and records a verdict.
//
// Everything it compares against comes from the ledger through a
// trust.Reader, never from the server: the model's spec (output scale,
// outputs per challenge, tolerance, slot layout), its verifying key and
// commitment, the proof and the revealed challenges it covers.
type Client struct {
	Classifier   *client.Classifier
	Ledger       *trust.Reader
	Registration *Registration
	// Key is the client's ed25519 identity: it signs requests, reveals
	// and verdicts.
	Key ed25519.PrivateKey
	// Pool is the public set challenge images are drawn from (the MNIST
	// training set); each draw is then randomly distorted.
	Pool   *dataset.Set
	Blocks int           // k; DefaultBlocks when 0
	Poll   time.Duration // between ledger queries while waiting (default 100 ms)
	// Price is what each request pays (signed, and locked in its escrow):
	// the model's offer price, or 0 for a model without an offer.
	Price uint64
	// Rand, when set, replaces the secure random source for challenges and
	// positions. Only reproducible statistical tests set it: a server that
	// can predict the challenges can cheat on the real image.
	Rand *mrand.Rand
}

// ConnectOptions configure Connect.
type ConnectOptions struct {
	Conn    *client.Conn
	Ledger  *trust.Reader
	ModelID string
	DataDir string
	Pin     Pin
	Key     ed25519.PrivateKey
	Pool    *dataset.Set
	Blocks  int
	// MaxRequestsPerKey bounds the requests per CKKS secret key (default
	// client.DefaultMaxRequestsPerKey). A dispute reveals the key's seed
	// and with it every image of the session: short sessions keep what a
	// dispute exposes small (docs/market.md).
	MaxRequestsPerKey int
	// MaxPrice is the most the client pays per image (0: any price). A
	// model's offer asking more is refused at Connect.
	MaxPrice uint64
}

// Connect reads the model's registration from the ledger and prepares the
// classifier for it: the server's CKKS parameters must be 128-bit secure
// and its slot layout the one the registered architecture needs.
func Connect(ctx context.Context, o ConnectOptions) (*Client, error) {
	m, err := o.Ledger.API.Model(ctx, o.ModelID, false)
	if err != nil {
		return nil, fmt.Errorf("model %q on the ledger: %w", o.ModelID, err)
	}
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	head, err := headCovering(hctx, o.Ledger, m.GetModel().GetIndex(), pollInterval)
	if err != nil {
		return nil, err
	}
	reg, err := ReadRegistration(ctx, o.Ledger, head, o.ModelID, o.Pin)
	if err != nil {
		return nil, err
	}
	cl, err := client.NewClassifier(ctx, o.Conn, client.ClassifierOptions{
		ModelID: o.ModelID, DataDir: o.DataDir, Architecture: reg.Spec.Architecture(), MaxRequestsPerKey: o.MaxRequestsPerKey,
	})
	if err != nil {
		return nil, err
	}
	if cl.Layout().Outputs != reg.Spec.Classes {
		return nil, fmt.Errorf("the server's layout has %d scores, the registered model %d classes", cl.Layout().Outputs, reg.Spec.Classes)
	}
	// The offer's price (market.go): what each request signs and locks.
	price, err := priceFor(ctx, o.Ledger.API, o.ModelID, o.MaxPrice)
	if err != nil {
		return nil, err
	}
	return &Client{Classifier: cl, Ledger: o.Ledger, Registration: reg, Key: o.Key, Pool: o.Pool, Blocks: o.Blocks, Price: price}, nil
}

// Request is one verifiable classification.
type Request struct {
	ID         string
	Key        [32]byte // ledger.RequestKey(model, client key, ID)
	RealBlock  int
	Positions  []uint32 // block of each challenge
	Challenges []pixels.Image
	Salt       []byte
	Commitment [32]byte
	// Scores and Class of the real image (decrypted, real units).
	Scores []float64
	Class  int
	// Guaranteed is true when the decrypted margin of Class over every
	// other class exceeds twice the registered tolerance: if the real
	// block was evaluated within the tolerance (as the challenges check),
	// the committed model gives this class too.
	Guaranteed bool
	// Blocks are the decrypted scores of every block.
	Blocks    [][]float64
	Result    *client.Result
	ReceiptTx []byte
	// The session the request was encrypted in, for a dispute: the seed
	// its keys derive from (secret until a dispute), the bundle's digest,
	// the CKKS parameters and the bundle's Galois elements.
	Seed           he.SessionSeed
	KeysDigest     [32]byte
	Parameters     he.ParametersLiteral
	GaloisElements []uint64
	// Price is what the request pays (its escrow).
	Price uint64
	// ProtocolMS is the client time the protocol adds to the private
	// inference path: drawing challenges, committing, signing, checking
	// the receipt.
	ProtocolMS float64
}

// Outcome is the end of a request: the verdict and what it rests on. Only
// Accept and Reason are published; the rest stays with the client.
type Outcome struct {
	Accept bool
	Reason ledgerv1.VerdictReason
	// Detail says why, locally. It may name decrypted values: it is never
	// sent to anyone.
	Detail string
	// MaxDiff is the largest |decrypted - proven| over the challenge
	// scores, in integer score units (MaxDiffReal in real units), against
	// the registered Tolerance.
	MaxDiff     float64
	MaxDiffReal float64
	// Proven are the verified proof's rows for this request's challenges
	// (what a dispute compares the output with).
	Proven       [][]int64
	Tolerance    int64
	ReceiptIndex uint64
	RevealIndex  uint64
	ProofIndex   uint64
	VerdictIndex uint64
}

func (c *Client) blocks() int {
	if c.Blocks == 0 {
		return DefaultBlocks
	}
	return c.Blocks
}

func (c *Client) poll() time.Duration {
	if c.Poll == 0 {
		return pollInterval
	}
	return c.Poll
}

func (c *Client) chainID() string { return c.Ledger.Anchor.ChainID }

func (c *Client) signer() ledger.Signer { return ledger.Signer{ChainID: c.chainID(), Key: c.Key} }

// ErrBadReceipt reports a receipt that does not match the exchange: the
// client does not reveal its challenges for it.
var ErrBadReceipt = errors.New("the server's receipt does not match the request")

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
func (c *Client) Classify(ctx context.Context, img pixels.Image) (*Request, error) {
	reg := c.Registration
	layout := c.Classifier.Layout()
	k := c.blocks()
	if k < 2 || k > layout.Blocks || k-1 > reg.Batch {
		return nil, fmt.Errorf("verifiable request: k = %d blocks, need 2..%d (one proof of %s covers %d challenges)", k, min(layout.Blocks, reg.Batch+1), reg.ModelID, reg.Batch)
	}
	if c.Pool == nil || c.Pool.Len() == 0 {
		return nil, errors.New("verifiable request: no challenge pool")
	}
	t0 := time.Now()
	rng := c.Rand
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
		ch := dataset.Augment(c.Pool.Images[rng.IntN(c.Pool.Len())], rng)
		req.Challenges = append(req.Challenges, ch)
		req.Positions = append(req.Positions, uint32(b))
	}
	for i := range req.Challenges {
		images[req.Positions[i]] = req.Challenges[i][:]
		raw = append(raw, req.Challenges[i][:])
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
	pub := c.Key.Public().(ed25519.PublicKey)
	req.Key = ledger.RequestKey(reg.ModelID, pub, req.ID)
	keysDigest := c.Classifier.KeysDigest()
	var inDigest [32]byte
	var sent *inferencev1.VerifiableRequest
	prep := time.Since(t0)
	res, err := c.Classifier.ClassifyWith(ctx, images, func(in []byte) (*inferencev1.VerifiableRequest, error) {
		t := time.Now()
		defer func() { prep += time.Since(t) }()
		// The key bundle is the one this encryption used (the classifier
		// may have rotated keys just before).
		keysDigest = c.Classifier.KeysDigest()
		req.Seed, req.KeysDigest, req.Price = c.Classifier.SessionSeed(), keysDigest, c.Price
		req.Parameters, req.GaloisElements = c.Classifier.Parameters().Literal(), c.Classifier.GaloisElements()
		inDigest = sha256.Sum256(in)
		d := ledger.ClientRequestDigest(c.chainID(), reg.ModelID, req.ID, keysDigest[:], inDigest[:], req.Commitment[:], uint32(k), c.Price)
		sent = &inferencev1.VerifiableRequest{
			RequestId: req.ID, ChallengeCommitment: req.Commitment[:], NumBlocks: uint32(k), ChainId: c.chainID(),
			ClientKey: pub, ClientSignature: ed25519.Sign(c.Key, d[:]), Price: c.Price,
		}
		return sent, nil
	})
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	req.Result, req.Blocks, req.ReceiptTx = res, res.Scores, res.Response.GetReceiptTx()
	if err := c.checkReceipt(res, sent, keysDigest, inDigest); err != nil {
		// The request is returned with the error so that the caller can
		// record a rejection once the deadline has passed (see Reject).
		return req, err
	}
	req.Scores = res.Scores[req.RealBlock]
	req.Class = model.Class(req.Scores)
	req.Guaranteed = guaranteed(req.Scores, reg.Spec.OutputFrac(), reg.Spec.Tolerance)
	prep += time.Since(t1)
	req.ProtocolMS = float64(prep.Microseconds()) / 1000
	return req, nil
}

// guaranteed reports whether the top score exceeds every other by more than
// twice the tolerance (in integer score units).
func guaranteed(scores []float64, frac int, tol int64) bool {
	if len(scores) < 2 {
		return true
	}
	s := slices.Clone(scores)
	slices.Sort(s)
	return math.Ldexp(s[len(s)-1]-s[len(s)-2], frac) > 2*float64(tol)
}

// checkReceipt verifies the server's receipt the way every ledger node
// will (ledger.ParseTx: encoding, chain, signature, field shapes) and
// field by field against what was sent and received.
func (c *Client) checkReceipt(res *client.Result, sent *inferencev1.VerifiableRequest, keysDigest, inDigest [32]byte) error {
	tx, err := ledger.ParseTx(c.chainID(), res.Response.GetReceiptTx())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	rc := tx.Body.GetInferenceReceipt()
	out := sha256.Sum256(res.Output)
	reg := c.Registration
	switch {
	case rc == nil:
		return fmt.Errorf("%w: not a receipt", ErrBadReceipt)
	case !bytes.Equal(tx.Signer, reg.ServerKey):
		return fmt.Errorf("%w: signed by %x, the model's registered server key is %x", ErrBadReceipt, tx.Signer[:8], reg.ServerKey[:8])
	case rc.GetModelId() != reg.ModelID || rc.GetRequestId() != sent.GetRequestId():
		return fmt.Errorf("%w: for model %q request %q", ErrBadReceipt, rc.GetModelId(), rc.GetRequestId())
	case !bytes.Equal(rc.GetKeysDigest(), keysDigest[:]):
		return fmt.Errorf("%w: names another key bundle", ErrBadReceipt)
	case !bytes.Equal(rc.GetInputDigest(), inDigest[:]):
		return fmt.Errorf("%w: input digest differs from the ciphertext sent", ErrBadReceipt)
	case !bytes.Equal(rc.GetOutputDigest(), out[:]):
		return fmt.Errorf("%w: output digest differs from the ciphertext received", ErrBadReceipt)
	case !bytes.Equal(rc.GetChallengeCommitment(), sent.GetChallengeCommitment()):
		return fmt.Errorf("%w: challenge commitment differs", ErrBadReceipt)
	case rc.GetNumBlocks() != sent.GetNumBlocks():
		return fmt.Errorf("%w: %d blocks, the request had %d", ErrBadReceipt, rc.GetNumBlocks(), sent.GetNumBlocks())
	case !bytes.Equal(rc.GetClientKey(), sent.GetClientKey()) || !bytes.Equal(rc.GetClientSignature(), sent.GetClientSignature()):
		return fmt.Errorf("%w: another client key or signature", ErrBadReceipt)
	}
	return nil
}

// record waits (at most timeout) for the request's record on the ledger.
func (c *Client) record(ctx context.Context, key [32]byte, timeout time.Duration, cond func(*ledgerv1.RequestRecord) bool) (*ledgerv1.RequestRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rec, err := c.Ledger.API.Request(ctx, key[:])
		if err == nil && cond(rec) {
			return rec, nil
		}
		if err != nil && !errors.Is(err, ledger.ErrNotFound) && ctx.Err() == nil {
			return nil, err
		}
		if err := sleep(ctx, c.poll()); err != nil {
			return rec, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// headCovering returns a verified head whose log includes index, waiting
// for the ledger to catch up (a replicated ledger's quorum head lags one
// block behind its latest).
func headCovering(ctx context.Context, r *trust.Reader, index uint64, poll time.Duration) (*ledgerv1.Checkpoint, error) {
	for {
		head, err := r.Head(ctx)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return nil, err
		}
		if err == nil && head.GetSize() > index {
			return head, nil
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, fmt.Errorf("waiting for a verified head that includes entry %d: %w", index, err)
		}
	}
}

// verifiedEntry reads log entry index through the trust.Reader.
func (c *Client) verifiedEntry(ctx context.Context, index uint64) (*ledger.Tx, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	head, err := headCovering(ctx, c.Ledger, index, c.poll())
	if err != nil {
		return nil, err
	}
	return c.Ledger.Entry(ctx, head, index)
}

// Reveal runs step 4: once the receipt is on the ledger (the client submits
// the server-signed receipt itself if the server has not) and is exactly
// the receipt the client checked, it publishes the challenges, their
// positions and the salt.
func (c *Client) Reveal(ctx context.Context, req *Request) (receiptIndex, revealIndex uint64, err error) {
	rec, err := c.record(ctx, req.Key, 3*time.Second, func(*ledgerv1.RequestRecord) bool { return true })
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		// Not recorded (yet): record the server-signed receipt ourselves.
		if receiptIndex, err = submitOnce(ctx, c.Ledger.API, req.ReceiptTx); err != nil {
			return 0, 0, fmt.Errorf("record the receipt: %w", err)
		}
	} else {
		receiptIndex = rec.GetReceiptIndex()
	}
	logged, err := c.verifiedEntry(ctx, receiptIndex)
	if err != nil {
		return 0, 0, fmt.Errorf("read the recorded receipt: %w", err)
	}
	if !bytes.Equal(logged.Raw, req.ReceiptTx) {
		return receiptIndex, 0, fmt.Errorf("%w: the ledger holds another receipt for this request (entry %d)", ErrBadReceipt, receiptIndex)
	}
	raw := make([][]byte, len(req.Challenges))
	for i := range req.Challenges {
		raw[i] = req.Challenges[i][:]
	}
	tx, err := c.signer().Reveal(&ledgerv1.ChallengeReveal{
		ModelId: c.Registration.ModelID, RequestId: req.ID, Challenges: raw, Positions: req.Positions, Salt: req.Salt,
	})
	if err != nil {
		return receiptIndex, 0, err
	}
	if revealIndex, err = submitOnce(ctx, c.Ledger.API, tx); err != nil {
		return receiptIndex, 0, fmt.Errorf("reveal: %w", err)
	}
	return receiptIndex, revealIndex, nil
}

// Settle runs step 6: it waits for the proof of the revealed challenges,
// verifies it itself from verified log entries, compares the proven outputs
// at this request's place in the proof with the scores it decrypted from
// the challenge blocks, and records its verdict: a reason code, nothing
// else. When the proof deadline passes without a proof it records NO_PROOF
// (the ledger accepts that only if no proof was recorded). Read errors are
// retried, never taken for a missing proof; wait bounds the whole wait,
// and when it runs out first no verdict is recorded.
func (c *Client) Settle(ctx context.Context, req *Request, wait time.Duration) (*Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out := &Outcome{Tolerance: c.Registration.Spec.Tolerance}
	var lastErr error
	// keep remembers why the last attempt failed, but not that the wait
	// ran out in the middle of one: that says nothing.
	keep := func(err error) {
		// gRPC's own deadline timer can fire a moment before ctx's, so a
		// DeadlineExceeded status is the wait running out too.
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded && status.Code(err) != codes.Canceled {
			lastErr = err
		}
	}
	for {
		rec, err := c.Ledger.API.Request(ctx, req.Key[:])
		unproven := false
		switch {
		case err != nil:
			keep(err)
		case rec.GetStatus() == ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN:
			out.ReceiptIndex, out.RevealIndex = rec.GetReceiptIndex(), rec.GetRevealIndex()
			// The node's pointer is a hint: use it only if the verified
			// entry is a proof that lists this request, else look in the
			// verified log.
			p, ok, err := c.proofCovering(ctx, req, rec.GetProofIndex(), rec.GetRevealIndex())
			if err != nil {
				keep(err)
				break
			}
			if ok {
				out.ProofIndex = p
				return c.finish(ctx, req, out, p)
			}
			unproven = true // the node says proven, the log says not
		case rec.GetStatus() == ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED:
			out.ReceiptIndex, out.RevealIndex = rec.GetReceiptIndex(), rec.GetRevealIndex()
			unproven = true
		}
		if unproven {
			idx, err := c.verdictTx(ctx, req, false, ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF)
			var rj *ledger.Rejection
			switch {
			case err == nil:
				out.Reason, out.Detail, out.VerdictIndex = ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF, "no proof of the revealed challenges by the proof deadline", idx
				return out, nil
			case errors.As(err, &rj) && rj.Code == ledgerv1.Code_CODE_VERDICT_REASON_MISMATCH:
				// The ledger holds a proof the node did not show: find it
				// in the verified log.
				if p, ok, ferr := c.findProof(ctx, req, rec.GetRevealIndex()); ferr == nil && ok {
					out.ProofIndex = p
					return c.finish(ctx, req, out, p)
				} else if ferr != nil {
					keep(ferr)
				}
			case errors.As(err, &rj) && rj.Code == ledgerv1.Code_CODE_VERDICT_TOO_EARLY:
			default:
				keep(err)
			}
		}
		if err := sleep(ctx, c.poll()); err != nil {
			return out, fmt.Errorf("no verdict recorded within %v (last error: %v): %w", wait, lastErr, err)
		}
	}
}

// proofCovering returns the log index of a verified proof of this request:
// hint if that entry is one, else whatever the verified log after the
// reveal holds.
func (c *Client) proofCovering(ctx context.Context, req *Request, hint, reveal uint64) (uint64, bool, error) {
	if tx, err := c.verifiedEntry(ctx, hint); err == nil && c.lists(tx, req) {
		return hint, true, nil
	}
	return c.findProof(ctx, req, reveal)
}

// lists tells whether a verified transaction is a proof of this model, by
// its server key, that lists this request.
func (c *Client) lists(tx *ledger.Tx, req *Request) bool {
	cp := tx.Body.GetChallengeProof()
	if cp == nil || cp.GetModelId() != c.Registration.ModelID || !bytes.Equal(tx.Signer, c.Registration.ServerKey) {
		return false
	}
	for _, k := range cp.GetRequestKeys() {
		if bytes.Equal(k, req.Key[:]) {
			return true
		}
	}
	return false
}

// finish judges the proof at proofIndex and records the verdict.
// Judge verifies the proof recorded at proofIndex from the verified log and
// compares it with req's decrypted challenge scores, as Settle does, but
// records no verdict: a client that disputes (market.go) may judge first
// and decide.
func (c *Client) Judge(ctx context.Context, req *Request, proofIndex uint64) *Outcome {
	out := &Outcome{Tolerance: c.Registration.Spec.Tolerance, ProofIndex: proofIndex}
	c.judge(ctx, req, proofIndex, out)
	return out
}

func (c *Client) finish(ctx context.Context, req *Request, out *Outcome, proofIndex uint64) (*Outcome, error) {
	c.judge(ctx, req, proofIndex, out)
	idx, err := c.verdict(ctx, req, out.Accept, out.Reason)
	if err != nil {
		return out, fmt.Errorf("record verdict: %w", err)
	}
	out.VerdictIndex = idx
	return out, nil
}

// findProof scans the verified log after the reveal for a proof that
// lists this request: a node that hides a proof (reports the request
// unproven) or points at another cannot make the client miss it.
func (c *Client) findProof(ctx context.Context, req *Request, from uint64) (uint64, bool, error) {
	head, err := c.Ledger.Head(ctx)
	if err != nil {
		return 0, false, err
	}
	for i := from + 1; i < head.GetSize(); i++ {
		tx, err := c.Ledger.Entry(ctx, head, i)
		if err != nil {
			return 0, false, err
		}
		if c.lists(tx, req) {
			return i, true, nil
		}
	}
	return 0, false, nil
}

// Reject records a rejection of a request whose exchange was wrong (say,
// its receipt does not match the ciphertext received): the client never
// revealed, and the ledger accepts BAD_RECEIPT once the request's proof
// deadline has passed.
func (c *Client) Reject(ctx context.Context, req *Request, reason ledgerv1.VerdictReason) (uint64, error) {
	if _, err := c.record(ctx, req.Key, 3*time.Second, func(*ledgerv1.RequestRecord) bool { return true }); err != nil {
		return 0, fmt.Errorf("reject: the request is not on the ledger: %w", err)
	}
	return c.verdict(ctx, req, false, reason)
}

// verdict signs and records a verdict, retrying while the ledger says it is
// too early (before the proof or its deadline).
func (c *Client) verdict(ctx context.Context, req *Request, accept bool, reason ledgerv1.VerdictReason) (uint64, error) {
	for {
		idx, err := c.verdictTx(ctx, req, accept, reason)
		var rj *ledger.Rejection
		if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_VERDICT_TOO_EARLY {
			return idx, err
		}
		if err := sleep(ctx, c.poll()); err != nil {
			return 0, fmt.Errorf("waiting for the proof deadline: %w", err)
		}
	}
}

// verdictTx signs and submits a verdict once.
func (c *Client) verdictTx(ctx context.Context, req *Request, accept bool, reason ledgerv1.VerdictReason) (uint64, error) {
	tx, err := c.signer().Verdict(&ledgerv1.Verdict{ModelId: c.Registration.ModelID, RequestId: req.ID, Accept: accept, Reason: reason})
	if err != nil {
		return 0, err
	}
	return submitOnce(ctx, c.Ledger.API, tx)
}

// judge verifies the proof recorded at proofIndex and compares it with
// the decrypted challenge scores.
func (c *Client) judge(ctx context.Context, req *Request, proofIndex uint64, out *Outcome) {
	rows, err := c.provenRows(ctx, req, proofIndex)
	if err != nil {
		out.Reason, out.Detail = ledgerv1.VerdictReason_VERDICT_REASON_BAD_PROOF, fmt.Sprintf("the recorded proof does not hold for this request: %v", err)
		return
	}
	out.Proven = rows
	c.compare(req, rows, out)
}

// Compare checks a request's decrypted challenge scores against proven
// rows (one per challenge, in reveal order), as Settle does once it has
// verified the proof.
func (c *Client) Compare(req *Request, rows [][]int64) *Outcome {
	out := &Outcome{Tolerance: c.Registration.Spec.Tolerance}
	c.compare(req, rows, out)
	return out
}

// provenRows reads the proof transaction from the verified log, checks it
// covers this request, gathers the revealed challenges of every request it
// covers (from verified reveal entries), verifies the Groth16 proof against
// the registered key and commitment, and returns this request's rows.
func (c *Client) provenRows(ctx context.Context, req *Request, proofIndex uint64) ([][]int64, error) {
	reg := c.Registration
	tx, err := c.verifiedEntry(ctx, proofIndex)
	if err != nil {
		return nil, err
	}
	cp := tx.Body.GetChallengeProof()
	if cp == nil || cp.GetModelId() != reg.ModelID || !bytes.Equal(tx.Signer, reg.ServerKey) {
		return nil, fmt.Errorf("entry %d is not a proof of %s by its server key", proofIndex, reg.ModelID)
	}
	images, offset, err := c.coveredChallenges(ctx, cp, req)
	if err != nil {
		return nil, err
	}
	st, err := statementOf(reg, cp, images)
	if err != nil {
		return nil, err
	}
	if err := zk.Verify(reg.VK, st, cp.GetProof()); err != nil {
		return nil, err
	}
	return st.Outputs[offset : offset+len(req.Challenges)], nil
}

// coveredChallenges returns the challenge images a proof covers, in order,
// and the offset of req's first challenge among them. The client's own
// challenges come from its memory, the others' from their verified reveal
// entries, each checked to be the reveal of the request key listed.
func (c *Client) coveredChallenges(ctx context.Context, cp *ledgerv1.ChallengeProof, req *Request) ([]pixels.Image, int, error) {
	var images []pixels.Image
	offset := -1
	for _, key := range cp.GetRequestKeys() {
		if bytes.Equal(key, req.Key[:]) {
			offset = len(images)
			images = append(images, req.Challenges...)
			continue
		}
		imgs, err := c.revealedChallenges(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		images = append(images, imgs...)
	}
	if offset < 0 {
		return nil, 0, fmt.Errorf("the proof does not cover request %x", req.Key[:8])
	}
	return images, offset, nil
}

// revealedChallenges reads the challenges revealed for a request key from
// the verified log.
func (c *Client) revealedChallenges(ctx context.Context, key []byte) ([]pixels.Image, error) {
	return revealedChallenges(ctx, c.Ledger, c.Registration.ModelID, key, c.verifiedEntry)
}

func revealedChallenges(ctx context.Context, r *trust.Reader, modelID string, key []byte, entry func(context.Context, uint64) (*ledger.Tx, error)) ([]pixels.Image, error) {
	rec, err := r.API.Request(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("request %x: %w", key[:min(8, len(key))], err)
	}
	tx, err := entry(ctx, rec.GetRevealIndex())
	if err != nil {
		return nil, fmt.Errorf("reveal of %x: %w", key[:8], err)
	}
	rv := tx.Body.GetChallengeReveal()
	if rv == nil {
		return nil, fmt.Errorf("entry %d is not a reveal", rec.GetRevealIndex())
	}
	if k := ledger.RequestKey(rv.GetModelId(), tx.Signer, rv.GetRequestId()); !bytes.Equal(k[:], key) || rv.GetModelId() != modelID {
		return nil, fmt.Errorf("entry %d is the reveal of another request", rec.GetRevealIndex())
	}
	return imagesOf(rv.GetChallenges())
}

// statementOf is the statement a proof transaction must prove: the
// registered commitment, the digest of the covered challenges padded to
// the batch as the ledger pads them, and the outputs the transaction
// claims, one row per padded challenge.
func statementOf(reg *Registration, cp *ledgerv1.ChallengeProof, images []pixels.Image) (zk.Statement, error) {
	if len(images) == 0 || len(images) > reg.Batch {
		return zk.Statement{}, fmt.Errorf("the proof covers %d challenges, a proof of %s covers 1..%d", len(images), reg.ModelID, reg.Batch)
	}
	padded := padImages(images, reg.Batch)
	classes := reg.Spec.Classes
	if len(cp.GetOutputs()) != classes*len(padded) {
		return zk.Statement{}, fmt.Errorf("%d outputs for %d challenges", len(cp.GetOutputs()), len(padded))
	}
	st := zk.Statement{Commitment: reg.Commitment, Digest: zk.ChallengeDigest(padded)}
	for i := range padded {
		st.Outputs = append(st.Outputs, cp.GetOutputs()[i*classes:(i+1)*classes])
	}
	return st, nil
}

// compare checks a request's decrypted challenge scores against proven
// rows, in integer score units (the registered output fraction), with the
// registered tolerance.
func (c *Client) compare(req *Request, rows [][]int64, out *Outcome) {
	spec := c.Registration.Spec
	if len(rows) != len(req.Challenges) {
		out.Accept, out.Reason = false, ledgerv1.VerdictReason_VERDICT_REASON_BAD_PROOF
		out.Detail = fmt.Sprintf("%d proven rows for %d challenges", len(rows), len(req.Challenges))
		return
	}
	frac := spec.OutputFrac()
	worst := ""
	for i, b := range req.Positions {
		for r := range rows[i] {
			dec := math.Ldexp(req.Blocks[b][r], frac)
			if d := math.Abs(dec - float64(rows[i][r])); d > out.MaxDiff || math.IsNaN(d) {
				out.MaxDiff = d
				worst = fmt.Sprintf("challenge %d (block %d) score %d: decrypted %.1f, proven %d (integer units)", i, b, r, dec, rows[i][r])
			}
		}
	}
	out.MaxDiffReal = math.Ldexp(out.MaxDiff, -frac)
	if !(out.MaxDiff <= float64(spec.Tolerance)) {
		out.Accept, out.Reason = false, ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER
		out.Detail = fmt.Sprintf("decrypted challenge scores differ from the committed model's by %.1f > %d units: %s", out.MaxDiff, spec.Tolerance, worst)
		return
	}
	out.Accept, out.Reason = true, ledgerv1.VerdictReason_VERDICT_REASON_MATCH
	out.Detail = fmt.Sprintf("%d challenges match the committed model within %.1f of %d units", len(req.Challenges), out.MaxDiff, spec.Tolerance)
}
