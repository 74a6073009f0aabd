package he

import (
	mrand "math/rand/v2"
	"testing"
)

// A model update of the default network: 30,634 weights and biases plus
// the sample weight, in 4 ciphertexts of 8192 slots.
const benchUpdateLen = 30635

// BenchmarkAggregation measures each HE step of one federated round with
// 4 parties and t = 3 (the protocol runs the decryption for all 4
// 3-subsets when everyone is online, 3 shares per party).
//
//	go test -run '^$' -bench Aggregation -benchtime 20x ./he
func BenchmarkAggregation(b *testing.B) {
	cm := committee43(b)
	rng := mrand.New(mrand.NewPCG(1, 1))
	v := randomVector(rng, benchUpdateLen, 0.1)
	var cts []*VectorCiphertext
	for range cm.parties {
		ct, err := cm.key.Encrypt(v)
		if err != nil {
			b.Fatal(err)
		}
		cts = append(cts, ct)
	}
	agg, _ := cm.ctx.Sum(cts...)
	subset := []uint64{1, 2, 3}
	b.Run("Encrypt", func(b *testing.B) {
		for range b.N {
			ct, err := cm.key.Encrypt(v)
			if err != nil {
				b.Fatal(err)
			}
			_ = ct.Digest()
		}
	})
	b.Run("Decode", func(b *testing.B) {
		w, _ := cts[0].MarshalBinary()
		b.SetBytes(int64(len(w)))
		for range b.N {
			if _, err := cm.key.UnmarshalVectorCiphertext(w, 4); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Sum4", func(b *testing.B) {
		for range b.N {
			s, err := cm.ctx.Sum(cts...)
			if err != nil {
				b.Fatal(err)
			}
			_ = s.Digest()
		}
	})
	b.Run("DecryptionShare", func(b *testing.B) {
		for range b.N {
			if _, err := cm.parties[0].DecryptionShare(agg, subset); err != nil {
				b.Fatal(err)
			}
		}
	})
	var shares []*DecryptionShare
	for _, q := range subset {
		s, _ := cm.parties[q-1].DecryptionShare(agg, subset)
		shares = append(shares, s)
	}
	b.Run("Combine3", func(b *testing.B) {
		for range b.N {
			if _, err := cm.key.Decrypt(agg, shares, benchUpdateLen); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("update %d B, decryption share %d B", cts[0].WireSize(), shares[0].WireSize())
}
