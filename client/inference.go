package client

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// Inference is one image classified under encryption, as `veil infer`
// reports it. Latencies are in milliseconds.
type Inference struct {
	Class  int       `json:"class"`
	Scores []float64 `json:"scores"`
	// Label is the image's known label, when the caller knows one.
	Label *int   `json:"label,omitempty"`
	Model string `json:"model"`
	// Plaintext is the fixed-point model's answer in the clear (local
	// inference only: a client of a server has no weights).
	Plaintext *PlaintextClass `json:"plaintext,omitempty"`
	LatencyMS struct {
		Encrypt  float64 `json:"encrypt"`
		Evaluate float64 `json:"evaluate"`
		Decrypt  float64 `json:"decrypt"`
		Total    float64 `json:"total"`
		Network  float64 `json:"network,omitempty"`
		KeyGen   float64 `json:"keygen,omitempty"`
	} `json:"latency_ms"`
	CiphertextBytes struct {
		Input  int `json:"input"`
		Output int `json:"output"`
	} `json:"ciphertext_bytes"`
	Keys struct {
		GaloisKeys int  `json:"galois_keys"`
		Bytes      int  `json:"bytes"`
		Reused     bool `json:"reused"`
	} `json:"keys"`
	Block      int    `json:"block"`
	Blocks     int    `json:"blocks"`
	Parameters string `json:"parameters"`
	Server     string `json:"server,omitempty"`
}

// PlaintextClass is the class the model gives an image in the clear.
type PlaintextClass struct {
	Class int `json:"class"`
}

// ClassifyLocally plays the client and the server in this process with
// fresh keys, through the wire encodings a remote server would see, and
// compares the decrypted class with the plaintext model's. The image goes
// into a random block; the other blocks stay empty.
func ClassifyLocally(ctx context.Context, m *model.Model, img pixels.Image) (*Inference, error) {
	sess, err := he.NewDefaultLocalSession(m)
	if err != nil {
		return nil, err
	}
	net := sess.Network
	p, layout := net.Parameters(), net.Layout()
	res := &Inference{Model: m.Name, Parameters: p.Literal().String() + "; " + net.Settings().String(),
		Blocks: layout.Blocks, Block: rand.IntN(layout.Blocks)}
	res.Keys.GaloisKeys, res.Keys.Bytes = len(net.GaloisElements()), len(sess.Bundle)
	res.LatencyMS.KeyGen = stats.Milliseconds(sess.KeyGen)
	images := make([][]uint8, layout.Blocks)
	images[res.Block] = img[:]
	rt, err := sess.RoundTrip(ctx, images)
	if err != nil {
		return nil, err
	}
	res.Scores = rt.Scores[res.Block]
	res.Class = model.Class(res.Scores)
	res.LatencyMS.Encrypt = stats.Milliseconds(rt.Encrypt)
	res.LatencyMS.Evaluate = stats.Milliseconds(rt.Server)
	res.LatencyMS.Decrypt = stats.Milliseconds(rt.Decrypt)
	res.LatencyMS.Total = stats.Milliseconds(rt.Total())
	res.CiphertextBytes.Input, res.CiphertextBytes.Output = rt.InputBytes, rt.OutputBytes
	plain, err := m.Forward(img[:])
	if err != nil {
		return nil, err
	}
	res.Plaintext = &PlaintextClass{Class: model.Class(plain)}
	return res, nil
}

// ClassifyImage classifies one image through the server, in a random block
// of the ciphertext (the other blocks stay empty).
func (c *Classifier) ClassifyImage(ctx context.Context, img pixels.Image) (*Inference, error) {
	lit := c.params.Literal()
	sec, err := lit.SecurityBits()
	if err != nil {
		return nil, err
	}
	res := &Inference{Model: c.Info.GetId(), Server: c.conn.Addr, Blocks: c.layout.Blocks, Block: rand.IntN(c.layout.Blocks)}
	res.Parameters = fmt.Sprintf("%s; %d-bit security", lit, sec)
	res.Keys.GaloisKeys, res.Keys.Bytes, res.Keys.Reused = len(c.Info.GetGaloisElements()), c.KeyBytes, c.SessionReused
	res.LatencyMS.KeyGen = stats.Milliseconds(c.KeyGen)
	images := make([][]uint8, c.layout.Blocks)
	images[res.Block] = img[:]
	r, err := c.Classify(ctx, images)
	if err != nil {
		return nil, err
	}
	res.Scores = r.Scores[res.Block]
	res.Class = model.Class(res.Scores)
	res.LatencyMS.Encrypt = r.EncryptMS
	res.LatencyMS.Evaluate = r.Server.GetEvaluateMs()
	res.LatencyMS.Network = r.RoundTripMS - r.Server.GetEvaluateMs()
	res.LatencyMS.Decrypt = r.DecryptMS
	res.LatencyMS.Total = r.EncryptMS + r.RoundTripMS + r.DecryptMS
	res.CiphertextBytes.Input, res.CiphertextBytes.Output = r.InputBytes, r.OutputBytes
	return res, nil
}

// WriteText prints the inference as `veil infer` does.
func (r *Inference) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "class %d", r.Class)
	if r.Label != nil {
		fmt.Fprintf(w, " (MNIST label %d)", *r.Label)
	}
	fmt.Fprint(w, "\nscores")
	for i, s := range r.Scores {
		fmt.Fprintf(w, " %d:%.2f", i, s)
	}
	l := r.LatencyMS
	fmt.Fprintf(w, "\nlatency encrypt %.1f ms, evaluate %.1f ms, decrypt %.1f ms", l.Encrypt, l.Evaluate, l.Decrypt)
	if r.Server != "" {
		fmt.Fprintf(w, ", network and queue %.1f ms", l.Network)
	}
	fmt.Fprintf(w, ", total %.1f ms\nciphertexts in %d bytes, out %d bytes; %d rotation keys, key bundle %.1f MB",
		l.Total, r.CiphertextBytes.Input, r.CiphertextBytes.Output, r.Keys.GaloisKeys, float64(r.Keys.Bytes)/1e6)
	if r.Keys.Reused {
		fmt.Fprint(w, " (session reused: nothing uploaded)")
	} else if l.KeyGen > 0 {
		fmt.Fprintf(w, " made in %.0f ms", l.KeyGen)
	}
	fmt.Fprintf(w, "\nimage in block %d of %d; %s\n", r.Block, r.Blocks, r.Parameters)
	if r.Server != "" {
		fmt.Fprintf(w, "server %s\n", r.Server)
	}
	return nil
}
