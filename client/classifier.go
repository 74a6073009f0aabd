package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
)

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }

// Classifier classifies images privately with one model of one server.
type Classifier struct {
	conn    *Conn
	Info    *inferencev1.ModelInfo
	params  *he.Parameters
	layout  he.Layout
	sk      *he.SecretKey
	dir     string
	session string
	// KeysReused tells whether the keys and the session came from an
	// earlier run.
	KeysReused    bool
	SessionReused bool
	// KeyGen and Upload are the times spent making and sending keys.
	KeyGen, Upload time.Duration
	KeyBytes       int
}

// ParametersFor decodes and compiles the CKKS parameters a model info
// announces, checks that they compile to the primes the server named, and
// checks the slot layout against them.
func ParametersFor(info *inferencev1.ModelInfo) (*he.Parameters, he.Layout, error) {
	ck, lay := info.GetCkks(), info.GetLayout()
	if ck == nil || lay == nil {
		return nil, he.Layout{}, errors.New("model info lacks CKKS parameters or layout")
	}
	lit, err := he.UnmarshalParametersLiteral(ck.GetLiteral())
	if err != nil {
		return nil, he.Layout{}, fmt.Errorf("server's CKKS parameters: %w", err)
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

// NewClassifier prepares private classification with a model: it loads the
// client's keys from dataDir or makes them, and reuses the server session
// if it is alive, else uploads the evaluation keys.
func NewClassifier(ctx context.Context, conn *Conn, modelID, dataDir string) (*Classifier, error) {
	info, err := conn.GetModel(ctx, modelID)
	if err != nil {
		return nil, err
	}
	params, layout, err := ParametersFor(info)
	if err != nil {
		return nil, err
	}
	c := &Classifier{conn: conn, Info: info, params: params, layout: layout}
	c.dir = keyDir(dataDir, conn.Addr, modelID, params.Fingerprint())
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	skPath := filepath.Join(c.dir, "secret.key")
	bundlePath := filepath.Join(c.dir, "evaluation.keys")
	sessPath := filepath.Join(c.dir, "session")
	var bundle []byte
	if data, err := os.ReadFile(skPath); err == nil {
		if c.sk, err = params.UnmarshalSecretKey(data); err != nil {
			return nil, fmt.Errorf("%s: %w", skPath, err)
		}
		bundle, err = os.ReadFile(bundlePath)
		if err != nil {
			return nil, fmt.Errorf("evaluation keys next to %s: %w", skPath, err)
		}
		c.KeysReused = true
	} else if errors.Is(err, os.ErrNotExist) {
		t0 := time.Now()
		c.sk = params.GenSecretKey()
		keys, err := c.sk.GenEvaluationKeys(info.GetGaloisElements())
		if err != nil {
			return nil, err
		}
		if bundle, err = keys.MarshalBinary(); err != nil {
			return nil, err
		}
		c.KeyGen = time.Since(t0)
		skBytes, err := c.sk.MarshalBinary()
		if err != nil {
			return nil, err
		}
		if err := writeFile0600(skPath, skBytes); err != nil {
			return nil, err
		}
		if err := writeFile0600(bundlePath, bundle); err != nil {
			return nil, err
		}
		_ = os.Remove(sessPath)
	} else {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	c.KeyBytes = len(bundle)
	if data, err := os.ReadFile(sessPath); err == nil {
		id := strings.TrimSpace(string(data))
		alive, err := conn.SessionAlive(ctx, id)
		if err != nil {
			return nil, err
		}
		if alive {
			c.session, c.SessionReused = id, true
			return c, nil
		}
	}
	t0 := time.Now()
	resp, err := conn.OpenSession(ctx, modelID, bundle)
	if err != nil {
		return nil, err
	}
	c.Upload = time.Since(t0)
	c.session = resp.GetSessionId()
	if err := writeFile0600(sessPath, []byte(c.session+"\n")); err != nil {
		return nil, err
	}
	return c, nil
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

// Parameters returns the CKKS parameters.
func (c *Classifier) Parameters() *he.Parameters { return c.params }

// SecretKey returns the client's secret key (it never leaves the client).
func (c *Classifier) SecretKey() *he.SecretKey { return c.sk }

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
	return c.classify(ctx, images, nil)
}

// classify is Classify; verifiable, when set, makes the protocol fields of
// the request from the encoded input ciphertext.
func (c *Classifier) classify(ctx context.Context, images [][]uint8, verifiable func(in []byte) (*inferencev1.VerifiableRequest, error)) (*Result, error) {
	t0 := time.Now()
	ct, err := c.sk.Encrypt(c.layout, images)
	if err != nil {
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
