package he

import (
	"context"
	"fmt"
	"time"

	"github.com/veil-project/veil/model"
)

// LocalSession is a client's keys and the server's view of them in one
// process: `veil infer` without a server, `veil eval` and the benchmarks
// measure the whole encrypted path with it. Every message goes through the
// wire encoding a remote server would see: the key bundle and both
// ciphertexts are marshalled and unmarshalled.
type LocalSession struct {
	Network   *Network
	SecretKey *SecretKey
	// Keys are the evaluation keys as the server decoded them from Bundle.
	Keys   *EvaluationKeys
	Bundle []byte
	// KeyGen is the client's time to make and encode the keys; KeyLoad the
	// server's time to decode and check them.
	KeyGen, KeyLoad time.Duration
}

// NewLocalSession makes a fresh secret key and the evaluation keys net
// needs, and decodes them as a server would.
func NewLocalSession(net *Network) (*LocalSession, error) {
	p := net.Parameters()
	t0 := time.Now()
	sk := p.GenSecretKey()
	keys, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		return nil, err
	}
	bundle, err := keys.MarshalBinary()
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	serverKeys, err := p.UnmarshalEvaluationKeys(bundle, net.GaloisElements())
	if err != nil {
		return nil, fmt.Errorf("server side: %w", err)
	}
	return &LocalSession{Network: net, SecretKey: sk, Keys: serverKeys, Bundle: bundle,
		KeyGen: t1.Sub(t0), KeyLoad: time.Since(t1)}, nil
}

// NewDefaultLocalSession compiles m at DefaultParametersLiteral and
// DefaultEvaluationSettings and makes a session for it.
func NewDefaultLocalSession(m *model.Model) (*LocalSession, error) {
	p, err := NewParameters(DefaultParametersLiteral)
	if err != nil {
		return nil, err
	}
	net, err := p.Compile(m, DefaultEvaluationSettings)
	if err != nil {
		return nil, err
	}
	return NewLocalSession(net)
}

// RoundTrip is one encrypted request, as measured by [LocalSession.RoundTrip].
type RoundTrip struct {
	// Scores[b] are the decrypted scores of block b (all blocks).
	Scores [][]float64
	// Encrypt is the client's encryption and encoding; Server the server's
	// decoding, evaluation and encoding, of which Evaluate is the
	// evaluation alone; Decrypt the client's decoding and decryption.
	Encrypt, Server, Evaluate, Decrypt time.Duration
	// Stages holds the duration of each evaluation stage (StageMatrix1, ...).
	Stages map[string]time.Duration
	// InputBytes and OutputBytes are the sizes of the two ciphertexts.
	InputBytes, OutputBytes int
}

// Total is the end-to-end time: Encrypt + Server + Decrypt.
func (r *RoundTrip) Total() time.Duration { return r.Encrypt + r.Server + r.Decrypt }

// RoundTrip encrypts images[b] into block b (nil leaves a block empty),
// has the network evaluate the ciphertext as a server would, and decrypts
// every block's scores.
func (s *LocalSession) RoundTrip(ctx context.Context, images [][]uint8) (*RoundTrip, error) {
	p, layout := s.Network.Parameters(), s.Network.Layout()
	r := &RoundTrip{Stages: make(map[string]time.Duration, 7)}
	// Client: encrypt and encode.
	t0 := time.Now()
	ct, err := s.SecretKey.Encrypt(layout, images)
	if err != nil {
		return nil, err
	}
	in, err := ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	// Server: decode, evaluate, encode.
	serverIn, err := p.UnmarshalCiphertext(in)
	if err != nil {
		return nil, fmt.Errorf("server side: %w", err)
	}
	t2 := time.Now()
	result, err := s.Network.EvaluateTraced(ctx, serverIn, s.Keys, func(stage string, d time.Duration) { r.Stages[stage] = d })
	if err != nil {
		return nil, err
	}
	r.Evaluate = time.Since(t2)
	out, err := result.MarshalBinary()
	if err != nil {
		return nil, err
	}
	t3 := time.Now()
	// Client: decode and decrypt.
	back, err := p.UnmarshalCiphertext(out)
	if err != nil {
		return nil, fmt.Errorf("server's result: %w", err)
	}
	if r.Scores, err = s.SecretKey.Decrypt(layout, back); err != nil {
		return nil, err
	}
	r.Encrypt, r.Server, r.Decrypt = t1.Sub(t0), t3.Sub(t1), time.Since(t3)
	r.InputBytes, r.OutputBytes = len(in), len(out)
	return r, nil
}
