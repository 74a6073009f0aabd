package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
)

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// Classifier classifies images privately with one model of one server.
type Classifier struct {
	conn       *Conn
	Info       *inferencev1.ModelInfo
	params     *he.Parameters
	layout     he.Layout
	sk         *he.SecretKey
	dir        string
	opts       ClassifierOptions
	session    string
	keysDigest [32]byte
	bundle     []byte
	uses       int // encryptions made with the current secret key
	// KeysReused tells whether the keys and the session came from an
	// earlier run.
	KeysReused    bool
	SessionReused bool
	// KeyGen and Upload are the times spent making and sending keys.
	KeyGen, Upload time.Duration
	KeyBytes       int
}

// DefaultMaxRequestsPerKey bounds the requests one secret key serves before
// the classifier makes new keys and a new session. Every answer a client
// acts on tells the server a little about what the client decrypted (a
// verdict, at least); bounding the uses of one key bounds what a server can
// learn about that key from them (docs/protocol.md, "Verdicts").
const DefaultMaxRequestsPerKey = 256

// ClassifierOptions configure a Classifier.
type ClassifierOptions struct {
	ModelID string
	// DataDir holds the client's keys and session (under client/).
	DataDir string
	// Architecture, when set, is the model's architecture as the client
	// knows it from a source it trusts (the registered spec): the slot
	// layout is computed from it and the parameters, and a server that
	// announces another layout is refused.
	Architecture model.Architecture
	// MaxRequestsPerKey bounds the requests per secret key (default
	// DefaultMaxRequestsPerKey).
	MaxRequestsPerKey int
}

// ParametersFor rebuilds the CKKS parameters a model info announces and
// checks them: they must compile to the same primes as the server's, and
// the security level is computed here, from the HE standard's table, not
// taken from the server: anything below 128 bits is refused.
func ParametersFor(info *inferencev1.ModelInfo) (*he.Parameters, he.Layout, error) {
	ck, lay := info.GetCkks(), info.GetLayout()
	if ck == nil || lay == nil {
		return nil, he.Layout{}, errors.New("model info lacks CKKS parameters or layout")
	}
	lit, err := he.UnmarshalParametersLiteral(ck.GetLiteral())
	if err != nil {
		return nil, he.Layout{}, fmt.Errorf("server's CKKS parameters: %w", err)
	}
	if bits, err := lit.SecurityBits(); err != nil || bits < 128 {
		return nil, he.Layout{}, fmt.Errorf("server's CKKS parameters are not 128-bit secure: %v", err)
	}
	params, err := he.NewParameters(lit)
	if err != nil {
		return nil, he.Layout{}, fmt.Errorf("server's CKKS parameters: %w", err)
	}
	if params.Fingerprint() != ck.GetFingerprint() {
		return nil, he.Layout{}, fmt.Errorf("server's CKKS parameters compile to %q here but %q there", params.Fingerprint(), ck.GetFingerprint())
	}
	layout := he.Layout{BlockSize: int(lay.GetBlockSize()), Blocks: int(lay.GetBlocks()), InputOffset: int(lay.GetInputOffset()), Outputs: int(lay.GetOutputs())}
	if err := layout.Validate(lit); err != nil {
		return nil, he.Layout{}, fmt.Errorf("server's slot layout: %w", err)
	}
	return params, layout, nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// keyDir is <dataDir>/client/<server>/<model>-<parameters hash>.
func keyDir(dataDir, addr, modelID, fingerprint string) string {
	h := sha256.Sum256([]byte(fingerprint))
	return filepath.Join(dataDir, "client", unsafeChars.ReplaceAllString(addr, "_"),
		unsafeChars.ReplaceAllString(modelID, "_")+"-"+hex.EncodeToString(h[:6]))
}

// NewClassifier prepares private classification with a model: it checks
// the server's parameters (and layout, when the architecture is known),
// reuses the keys and the session kept under the data directory while the
// server holds that session and the keys have uses left, and otherwise
// makes fresh keys and opens a new session: a secret key never outlives its
// session.
func NewClassifier(ctx context.Context, conn *Conn, o ClassifierOptions) (*Classifier, error) {
	if o.MaxRequestsPerKey <= 0 {
		o.MaxRequestsPerKey = DefaultMaxRequestsPerKey
	}
	info, err := conn.GetModel(ctx, o.ModelID)
	if err != nil {
		return nil, err
	}
	if info.GetId() != o.ModelID {
		return nil, fmt.Errorf("asked the server for model %q, it described %q", o.ModelID, info.GetId())
	}
	params, layout, err := ParametersFor(info)
	if err != nil {
		return nil, err
	}
	if o.Architecture != nil {
		want, err := params.LayoutFor(o.Architecture)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", o.ModelID, err)
		}
		if want != layout {
			return nil, fmt.Errorf("the server announces slot layout %+v, the registered model needs %+v", layout, want)
		}
	}
	c := &Classifier{conn: conn, Info: info, params: params, layout: layout, opts: o}
	c.dir = keyDir(o.DataDir, conn.Addr, o.ModelID, params.Fingerprint())
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	if err := c.resume(ctx); err != nil {
		return nil, err
	}
	if c.session == "" {
		if err := c.rotate(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Classifier) path(name string) string { return filepath.Join(c.dir, name) }

// resume loads the keys and the session of an earlier run if the server
// still holds that session and the keys have uses left. The secret key is
// derived again from the session seed kept on disk (session.seed, 0600).
func (c *Classifier) resume(ctx context.Context) error {
	seedData, err := os.ReadFile(c.path("session.seed"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read session seed: %w", err)
	}
	bundle, err1 := os.ReadFile(c.path("evaluation.keys"))
	sess, err2 := os.ReadFile(c.path("session"))
	uses, err3 := os.ReadFile(c.path("uses"))
	if err1 != nil || err2 != nil || err3 != nil {
		return nil // an incomplete set: start afresh
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(uses)))
	if err != nil || n < 0 || n >= c.opts.MaxRequestsPerKey {
		return nil
	}
	if len(seedData) != he.SessionSeedSize {
		return fmt.Errorf("%s: %d bytes, want %d", c.path("session.seed"), len(seedData), he.SessionSeedSize)
	}
	var seed he.SessionSeed
	copy(seed[:], seedData)
	sk, err := c.params.SecretKeyFromSeed(seed)
	if err != nil {
		return fmt.Errorf("%s: %w", c.path("session.seed"), err)
	}
	id := strings.TrimSpace(string(sess))
	alive, err := c.conn.SessionAlive(ctx, id)
	if err != nil || !alive {
		return err
	}
	c.sk, c.bundle, c.session, c.uses = sk, bundle, id, n
	c.keysDigest = sha256.Sum256(bundle)
	c.KeysReused, c.SessionReused, c.KeyBytes = true, true, len(bundle)
	return nil
}

// rotate makes fresh keys, opens a session with them and forgets the old
// ones (closing their session if it is still open).
func (c *Classifier) rotate(ctx context.Context) error {
	if c.session != "" {
		_ = c.conn.CloseSession(ctx, c.session)
	}
	for _, f := range []string{"session", "uses", "session.seed", "secret.key", "evaluation.keys"} {
		_ = os.Remove(c.path(f))
	}
	t0 := time.Now()
	seed, err := he.NewSessionSeed()
	if err != nil {
		return err
	}
	// Every key of the session derives from the seed: revealing it later
	// lets anyone rebuild this exact bundle (a dispute, docs/market.md).
	sk, keys, err := c.params.KeysFromSeed(seed, c.Info.GetGaloisElements())
	if err != nil {
		return err
	}
	bundle, err := keys.MarshalBinary()
	if err != nil {
		return err
	}
	c.KeyGen = time.Since(t0)
	if err := writeFile0600(c.path("session.seed"), seed[:]); err != nil {
		return err
	}
	if err := writeFile0600(c.path("evaluation.keys"), bundle); err != nil {
		return err
	}
	t0 = time.Now()
	resp, err := c.conn.OpenSession(ctx, c.opts.ModelID, bundle)
	if err != nil {
		return err
	}
	c.Upload = time.Since(t0)
	digest := sha256.Sum256(bundle)
	if !bytes.Equal(resp.GetKeysDigest(), digest[:]) {
		return fmt.Errorf("the server acknowledged key bundle %x, we sent %x", resp.GetKeysDigest(), digest[:8])
	}
	c.sk, c.bundle, c.session, c.uses, c.keysDigest = sk, bundle, resp.GetSessionId(), 0, digest
	c.KeysReused, c.SessionReused, c.KeyBytes = false, false, len(bundle)
	if err := writeFile0600(c.path("session"), []byte(c.session+"\n")); err != nil {
		return err
	}
	return writeFile0600(c.path("uses"), []byte("0\n"))
}

func writeFile0600(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Layout returns the model's slot layout.
func (c *Classifier) Layout() he.Layout { return c.layout }

// SessionID returns the server session in use.
func (c *Classifier) SessionID() string { return c.session }

// Parameters returns the compiled CKKS parameters.
func (c *Classifier) Parameters() *he.Parameters { return c.params }

// SecretKey returns the client's secret key (it never leaves the client).
func (c *Classifier) SecretKey() *he.SecretKey { return c.sk }

// SessionSeed returns the seed the current session's keys derive from. It
// is as secret as the secret key; a client reveals it only in a dispute.
func (c *Classifier) SessionSeed() he.SessionSeed {
	seed, _ := c.sk.Seed()
	return seed
}

// GaloisElements returns the rotation keys of the session's bundle.
func (c *Classifier) GaloisElements() []uint64 { return c.Info.GetGaloisElements() }

// Result is one private classification.
type Result struct {
	// Scores[b] are the decrypted scores of block b.
	Scores [][]float64
	// Timings in milliseconds.
	EncryptMS, RoundTripMS, DecryptMS float64
	Server                            *inferencev1.Timing
	InputBytes, OutputBytes           int
	RequestID                         string
	Input, Output                     []byte // the ciphertexts as sent and received
	Response                          *inferencev1.InferResponse
}

// Classify encrypts images[b] into block b (nil leaves a block empty), has
// the server evaluate the model, and decrypts every block's scores.
func (c *Classifier) Classify(ctx context.Context, images [][]uint8) (*Result, error) {
	return c.ClassifyWith(ctx, images, nil)
}

// KeysDigest is the SHA-256 of the evaluation-key bundle of the current
// session: what a verifiable request names the keys by.
func (c *Classifier) KeysDigest() [32]byte { return c.keysDigest }

// ClassifyWith is Classify; verifiable, when set, makes the protocol fields
// of the request from the encoded input ciphertext (see protocol.Client).
// When the current key has served MaxRequestsPerKey requests, fresh keys
// and a new session are made first.
func (c *Classifier) ClassifyWith(ctx context.Context, images [][]uint8, verifiable func(in []byte) (*inferencev1.VerifiableRequest, error)) (*Result, error) {
	if c.uses >= c.opts.MaxRequestsPerKey {
		if err := c.rotate(ctx); err != nil {
			return nil, fmt.Errorf("rotate keys: %w", err)
		}
	}
	t0 := time.Now()
	ct, err := c.sk.Encrypt(c.layout, images)
	if err != nil {
		return nil, err
	}
	c.uses++
	if err := writeFile0600(c.path("uses"), []byte(strconv.Itoa(c.uses)+"\n")); err != nil {
		return nil, err
	}
	in, err := ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var v *inferencev1.VerifiableRequest
	if verifiable != nil {
		if v, err = verifiable(in); err != nil {
			return nil, err
		}
	}
	t1 := time.Now()
	resp, err := c.conn.InferRequest(ctx, &inferencev1.InferRequest{SessionId: c.session, Ciphertext: in, Verifiable: v})
	if err != nil {
		return nil, err
	}
	t2 := time.Now()
	out, err := c.params.UnmarshalCiphertext(resp.GetCiphertext())
	if err != nil {
		return nil, fmt.Errorf("server's result: %w", err)
	}
	scores, err := c.sk.Decrypt(c.layout, out)
	if err != nil {
		return nil, err
	}
	t3 := time.Now()
	return &Result{
		Scores: scores, EncryptMS: stats.Milliseconds(t1.Sub(t0)), RoundTripMS: stats.Milliseconds(t2.Sub(t1)), DecryptMS: stats.Milliseconds(t3.Sub(t2)),
		Server: resp.GetTiming(), InputBytes: len(in), OutputBytes: len(resp.GetCiphertext()), RequestID: resp.GetRequestId(),
		Input: in, Output: resp.GetCiphertext(), Response: resp,
	}, nil
}

// DialClassifier connects to the server at addr and prepares private
// classification with one of its models (NewClassifier). The caller closes
// the connection.
func DialClassifier(ctx context.Context, addr string, dial Options, o ClassifierOptions) (*Conn, *Classifier, error) {
	conn, err := Dial(addr, dial)
	if err != nil {
		return nil, nil, err
	}
	cl, err := NewClassifier(ctx, conn, o)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, cl, nil
}
