package zk

import (
	"bytes"
	"testing"
)

func sampleProofFile() []byte {
	p := &Proof{CircuitVersion: CircuitVersion, Statement: Statement{Outputs: [][]int64{{1, -2, 3}}}, Groth16: make([]byte, 10)}
	b, _ := p.MarshalBinary()
	return b
}

func TestParseProofRejects(t *testing.T) {
	good := sampleProofFile()
	// The 10 zero bytes are not a valid Groth16 proof.
	if _, err := ParseProof(good); err == nil {
		t.Fatal("accepted a zero Groth16 proof")
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("VEILPRF9xxxxxxxxxxxxxxxxxxx"),
		"truncated": good[:50],
		"trailing":  append(append([]byte(nil), good...), 0),
	} {
		if _, err := ParseProof(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseProof: the parser never panics, and whatever it accepts
// re-encodes to the same bytes.
func FuzzParseProof(f *testing.F) {
	f.Add(sampleProofFile())
	f.Add([]byte("VEILPRF1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			return
		}
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted proof does not re-encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatal("re-encoding differs")
		}
	})
}
