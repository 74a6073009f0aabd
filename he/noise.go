package he

import (
	"context"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v6/core/rlwe"
)

// NoiseReport compares the noise of two results of the same evaluation on
// two encryptions of the same input, with flooding off: their difference is
// made only of noise terms that depend on the encryption randomness (and,
// through the network, on the weights), which flooding must drown.
type NoiseReport struct {
	// MaxCoeff and RMSCoeff are the largest and root-mean-square absolute
	// coefficient of the difference of the two decrypted polynomials,
	// divided by √2 (the noise of one result).
	MaxCoeff, RMSCoeff float64
	// FloodSigma is the flooding standard deviation per coefficient.
	FloodSigma float64
	// KL is the Kullback-Leibler divergence, in nats, between the flooded
	// result with and without the weight-dependent noise:
	// ‖e‖²/(2σ²) summed over the N coefficients. Pinsker's inequality bounds
	// the statistical distance by √(KL/2).
	KL, StatDistance float64
}

// MeasureNoise evaluates in twice (two fresh encryptions by the caller) without
// re-randomisation and reports the noise against this network's flooding.
func (n *Network) MeasureNoise(sk *SecretKey, a, b *Ciphertext, keys *EvaluationKeys) (*NoiseReport, error) {
	quiet := &Network{}
	*quiet = *n
	quiet.noRerandomize = true
	return measureNoise(n.params, sk, a, b, func(in *Ciphertext) (*Ciphertext, error) {
		return quiet.Evaluate(context.Background(), in, keys)
	}, n.settings.floodSigma())
}

// MeasureNoise is Network.MeasureNoise for a general network.
func (n *GeneralNetwork) MeasureNoise(sk *SecretKey, a, b *Ciphertext, keys *EvaluationKeys) (*NoiseReport, error) {
	quiet := &GeneralNetwork{}
	*quiet = *n
	quiet.noRerandomize = true
	sigma := 0.0
	if n.logFlood != 0 {
		sigma = math.Exp2(n.logFlood)
	}
	return measureNoise(n.params, sk, a, b, func(in *Ciphertext) (*Ciphertext, error) {
		return quiet.Evaluate(context.Background(), in, keys)
	}, sigma)
}

func measureNoise(c *Parameters, sk *SecretKey, a, b *Ciphertext, eval func(*Ciphertext) (*Ciphertext, error), sigma float64) (*NoiseReport, error) {
	var polys [2]*rlwe.Plaintext
	for i, in := range []*Ciphertext{a, b} {
		out, err := eval(in)
		if err != nil {
			return nil, fmt.Errorf("measure noise: %w", err)
		}
		polys[i] = rlwe.NewDecryptor(c.cp, sk.sk).DecryptNew(out.ct)
	}
	ringQ := c.cp.RingQ().AtLevel(0)
	d := ringQ.NewPoly()
	ringQ.Sub(polys[0].Value, polys[1].Value, d)
	ringQ.INTT(d, d)
	q := c.cp.Q()[0]
	var sum, mx float64
	for _, co := range d.Coeffs[0] {
		v := float64(co)
		if co > q/2 {
			v = -float64(q - co)
		}
		v = math.Abs(v) / math.Sqrt2
		mx = math.Max(mx, v)
		sum += v * v
	}
	r := &NoiseReport{MaxCoeff: mx, RMSCoeff: math.Sqrt(sum / float64(len(d.Coeffs[0]))), FloodSigma: sigma}
	if r.FloodSigma > 0 {
		r.KL = sum / (2 * r.FloodSigma * r.FloodSigma)
		r.StatDistance = math.Sqrt(r.KL / 2)
	}
	return r, nil
}
