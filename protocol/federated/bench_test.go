package federated

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/veil-project/veil/he"
)

// BenchmarkRoundHE is the HE work of one round of the default training
// (4 owners, t = 3, SCAFFOLD layout: 8 ciphertexts per update), everything
// on this machine one after the other: each owner encrypts its update; the
// coordinator decodes and sums them; each owner decodes the others'
// updates, re-sums, makes its 3 decryption shares, decodes the others' 9
// and decrypts with all 4 subsets. The "critical path" metric counts one
// owner (owners work in parallel on their own machines) plus the
// coordinator's sum; "all-parties" adds up everyone's HE work (the
// coordinator also decrypts every subset).
//
//	go test -run '^$' -bench RoundHE -benchtime 5x ./protocol/federated
func BenchmarkRoundHE(b *testing.B) {
	hc, err := he.NewAggregationContext(he.DefaultAggregationParameters)
	if err != nil {
		b.Fatal(err)
	}
	const n, t = 4, 3
	crs := make([]byte, he.CRSBytes)
	rand.Read(crs)
	all := points(seq(n))
	var parties []*he.Party
	var pks []*he.PublicKeyShare
	dealt := make([][]*he.ThresholdShare, n)
	for i := range n {
		p, _ := hc.NewParty(uint64(i + 1))
		s, _ := p.PublicKeyShare(crs)
		d, _ := p.DealThreshold(t, all)
		for j := range n {
			dealt[j] = append(dealt[j], d[j])
		}
		parties, pks = append(parties, p), append(pks, s)
	}
	key, err := hc.CollectivePublicKey(crs, pks)
	if err != nil {
		b.Fatal(err)
	}
	for i, p := range parties {
		if err := p.AcceptThresholdShares(t, all, dealt[i]); err != nil {
			b.Fatal(err)
		}
	}
	init, _ := InitialModel(1)
	l := newLayout(NumParams(init), hc.Slots(), true)
	rng := mrand.New(mrand.NewPCG(1, 1))
	weights := []float64{0.3, 0.2, 0.3, 0.2}
	owners := seq(n)
	var critical, total time.Duration
	for range b.N {
		var wires [][]byte
		var ownerTime, encSum, shareSum time.Duration
		for o := range n {
			delta, ci := make([]float64, l.params), make([]float64, l.control)
			for i := range delta {
				delta[i], ci[i] = rng.NormFloat64()*1e-3, rng.NormFloat64()*1e-2
			}
			t0 := time.Now()
			v, err := l.buildUpdate(delta, ci, weights[o], "bench", 1, o)
			if err != nil {
				b.Fatal(err)
			}
			ct, err := key.Encrypt(v)
			if err != nil {
				b.Fatal(err)
			}
			w, _ := ct.MarshalBinary()
			wires = append(wires, w)
			ownerTime = max(ownerTime, time.Since(t0))
			encSum += time.Since(t0)
		}
		t0 := time.Now()
		var cts []*he.VectorCiphertext
		for _, w := range wires {
			ct, err := key.UnmarshalVectorCiphertext(w, l.pieces(hc.Slots()))
			if err != nil {
				b.Fatal(err)
			}
			cts = append(cts, ct)
		}
		agg, err := hc.Sum(cts...)
		if err != nil {
			b.Fatal(err)
		}
		_ = agg.Digest()
		coord := time.Since(t0)
		byOwner := map[int][]*he.DecryptionShare{}
		var shareTime time.Duration
		var wiresOut [][][]byte
		for o, p := range parties {
			t1 := time.Now()
			var mine [][]byte
			for _, sub := range subsets(owners, t, o) {
				s, err := p.DecryptionShare(agg, points(sub))
				if err != nil {
					b.Fatal(err)
				}
				w, _ := s.MarshalBinary()
				mine = append(mine, w)
				byOwner[o] = append(byOwner[o], s)
			}
			wiresOut = append(wiresOut, mine)
			shareTime = max(shareTime, time.Since(t1))
			shareSum += time.Since(t1)
		}
		// One owner's checking work: decode the 3 other updates and sum,
		// decode the 9 other shares, decrypt with all 4 subsets, check.
		t1 := time.Now()
		for _, w := range wires[1:] {
			if _, err := key.UnmarshalVectorCiphertext(w, l.pieces(hc.Slots())); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := hc.Sum(cts...); err != nil {
			b.Fatal(err)
		}
		for _, ws := range wiresOut[1:] {
			for _, w := range ws {
				if _, err := hc.UnmarshalDecryptionShare(w); err != nil {
					b.Fatal(err)
				}
			}
		}
		vals, _, _, err := decryptAll(key, agg, owners, t, byOwner, l.slots)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := l.openAggregate(vals, "bench", 1, owners, weights); err != nil {
			b.Fatal(err)
		}
		check := time.Since(t1)
		critical += ownerTime + coord + shareTime + check
		// Everyone: the coordinator (sum, and the same decryption check) and
		// every owner (encrypt, shares, check).
		total += coord + check + encSum + shareSum + n*check
	}
	b.ReportMetric(float64(critical.Milliseconds())/float64(b.N), "critical-ms/round")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "all-parties-ms/round")
}
