package he

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/veil-project/veil/pixels"
)

// Benchmarks of every stage of one encrypted inference with the default
// model and parameters. Run: go test -bench . -benchtime 20x ./he
func BenchmarkKeyGen(b *testing.B) {
	f := getFix(b)
	for b.Loop() {
		sk := f.ctx.GenSecretKey()
		if _, err := sk.GenEvaluationKeys(f.net.GaloisElements()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	f := getFix(b)
	img := [][]uint8{make([]uint8, pixels.Count)}
	for b.Loop() {
		ct, err := f.sk.Encrypt(f.net.Layout(), img)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ct.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			f := getFix(b)
			s := DefaultEvaluationSettings
			s.Workers = workers
			net, err := f.ctx.Compile(mustDefault(b), s)
			if err != nil {
				b.Fatal(err)
			}
			ct, err := f.ctx.UnmarshalCiphertext(f.ct)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := net.Evaluate(context.Background(), ct, f.keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	f := getFix(b)
	ct, _ := f.ctx.UnmarshalCiphertext(f.ct)
	out, err := f.net.Evaluate(context.Background(), ct, f.keys)
	if err != nil {
		b.Fatal(err)
	}
	w, _ := out.MarshalBinary()
	for b.Loop() {
		back, err := f.ctx.UnmarshalCiphertext(w)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.sk.Decrypt(f.net.Layout(), back); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEndToEnd is one image: encrypt, encode, decode on the server,
// evaluate, encode, decode on the client, decrypt (keys already made).
func BenchmarkEndToEnd(b *testing.B) {
	f := getFix(b)
	img := [][]uint8{make([]uint8, pixels.Count)}
	for b.Loop() {
		ct, _ := f.sk.Encrypt(f.net.Layout(), img)
		w, _ := ct.MarshalBinary()
		in, err := f.ctx.UnmarshalCiphertext(w)
		if err != nil {
			b.Fatal(err)
		}
		out, err := f.net.Evaluate(context.Background(), in, f.keys)
		if err != nil {
			b.Fatal(err)
		}
		ow, _ := out.MarshalBinary()
		back, _ := f.ctx.UnmarshalCiphertext(ow)
		if _, err := f.sk.Decrypt(f.net.Layout(), back); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeysFromSeed is what a ledger node does first in a dispute:
// derive the whole key bundle from a revealed seed and hash it.
func BenchmarkKeysFromSeed(b *testing.B) {
	f := getFix(b)
	gal := f.net.GaloisElements()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, keys, err := f.ctx.KeysFromSeed(SessionSeed{byte(i)}, gal)
		if err != nil {
			b.Fatal(err)
		}
		w, _ := keys.MarshalBinary()
		_ = sha256.Sum256(w)
	}
}

// BenchmarkDecryptFixed is one deterministic decryption of a fresh input.
func BenchmarkDecryptFixed(b *testing.B) {
	f := getFix(b)
	ct, _ := f.sk.Encrypt(f.net.Layout(), nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.sk.DecryptFixed(ct, 40); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeneralEvaluate evaluates the HE.org workload's shape,
// 784-128-relu2-64-relu2-10, with random weights (latency does not depend
// on their values) under the parameters CompileGeneral chooses.
func BenchmarkGeneralEvaluate(b *testing.B) {
	_, imgs := testImages(b, 16)
	m := randomGeneralBits(b, "128,relu2,64,relu2,10", 1, imgs, 14)
	net, err := CompileGeneral(m, GeneralOptions{Probe: imgs})
	if err != nil {
		b.Fatal(err)
	}
	c := net.Parameters()
	sk := c.GenSecretKey()
	k, err := sk.GenEvaluationKeys(net.GaloisElements())
	if err != nil {
		b.Fatal(err)
	}
	w, _ := k.MarshalBinary()
	keys, err := c.UnmarshalEvaluationKeys(w, net.GaloisElements())
	if err != nil {
		b.Fatal(err)
	}
	ct, err := sk.Encrypt(net.Layout(), imgs[:1])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(net.GaloisElements())), "rotation-keys")
	for b.Loop() {
		if _, err := net.Evaluate(context.Background(), ct, keys); err != nil {
			b.Fatal(err)
		}
	}
}
