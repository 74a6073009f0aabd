package he

import (
	"testing"
)

// The multiparty decoders never panic and accept only what re-encodes to
// the same bytes.

func FuzzUnmarshalVectorCiphertext(f *testing.F) {
	cm := committee43(f)
	ct, err := cm.key.Encrypt([]float64{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	w, _ := ct.MarshalBinary()
	f.Add(w)
	f.Add(w[:60])
	f.Add([]byte("VAC1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := cm.key.UnmarshalVectorCiphertext(data, 1)
		if err != nil {
			return
		}
		back, _ := v.MarshalBinary()
		if string(back) != string(data) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

func FuzzUnmarshalDecryptionShare(f *testing.F) {
	cm := committee43(f)
	ct, _ := cm.key.Encrypt([]float64{1})
	s, err := cm.parties[0].DecryptionShare(ct, []uint64{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	w, _ := s.MarshalBinary()
	f.Add(w)
	f.Add(w[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := cm.ctx.UnmarshalDecryptionShare(data)
		if err != nil {
			return
		}
		back, _ := s.MarshalBinary()
		if string(back) != string(data) {
			t.Fatal("accepted a non-canonical encoding")
		}
		// Combining a decoded share with the wrong ciphertext is refused,
		// never a panic.
		_, _ = cm.key.Decrypt(ct, []*DecryptionShare{s}, 1)
	})
}

func FuzzUnmarshalKeyMaterial(f *testing.F) {
	cm := committee43(f)
	kw, _ := cm.key.MarshalBinary()
	pks, _ := cm.parties[0].PublicKeyShare(make([]byte, CRSBytes))
	pw, _ := pks.MarshalBinary()
	ts, _ := cm.parties[0].DealThreshold(2, []uint64{1, 2})
	tw, _ := ts[1].MarshalBinary()
	party, _ := cm.parties[0].MarshalBinary()
	for _, w := range [][]byte{kw, pw, tw, party} {
		f.Add(w)
		f.Add(w[:20])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := cm.ctx
		if k, err := c.UnmarshalCollectiveKey(data); err == nil {
			if b, _ := k.MarshalBinary(); string(b) != string(data) {
				t.Fatal("collective key: non-canonical encoding accepted")
			}
		}
		if s, err := c.UnmarshalPublicKeyShare(data); err == nil {
			if b, _ := s.MarshalBinary(); string(b) != string(data) {
				t.Fatal("public-key share: non-canonical encoding accepted")
			}
		}
		if s, err := c.UnmarshalThresholdShare(data); err == nil {
			if b, _ := s.MarshalBinary(); string(b) != string(data) {
				t.Fatal("threshold share: non-canonical encoding accepted")
			}
		}
		if p, err := c.UnmarshalParty(data); err == nil {
			if b, _ := p.MarshalBinary(); string(b) != string(data) {
				t.Fatal("party: non-canonical encoding accepted")
			}
		}
	})
}
