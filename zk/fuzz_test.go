package zk

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254"
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

// lengthBomb is a key or proof whose points are valid and whose length field
// announces 2^32-1 more: gnark alone would try to allocate 256 GiB.
func lengthBomb(prefix []byte, points [][]byte) []byte {
	var b bytes.Buffer
	b.Write(prefix)
	for _, p := range points {
		b.Write(p)
	}
	b.Write([]byte{0xff, 0xff, 0xff, 0xff})
	return b.Bytes()
}

func TestLengthBombsAreRefusedBeforeAllocation(t *testing.T) {
	_, _, g1, g2 := bn254.Generators()
	p1, p2 := g1.Bytes(), g2.Bytes()
	var hdr bytes.Buffer
	hdr.WriteString(vkMagic)
	binary.Write(&hdr, binary.BigEndian, uint16(CircuitVersion))
	hdr.Write(make([]byte, 32))
	binary.Write(&hdr, binary.BigEndian, uint32(3))
	binary.Write(&hdr, binary.BigEndian, uint32(10))
	vk := lengthBomb(hdr.Bytes(), [][]byte{p1[:], p1[:], p2[:], p2[:], p1[:], p2[:]})
	if _, err := UnmarshalVerifyingKey(vk); err == nil || !strings.Contains(err.Error(), "number of K points") {
		t.Fatalf("verifying key announcing 2^32-1 points: %v", err)
	}
	proof := lengthBomb(nil, [][]byte{p1[:], p2[:], p1[:]})
	if _, err := decodeGroth16(proof); err == nil || !strings.Contains(err.Error(), "commitments") {
		t.Fatalf("proof announcing 2^32-1 commitments: %v", err)
	}
	// An uncompressed point would shift every later field: refused too.
	raw := g1.RawBytes()
	if err := checkProofEncoding(append(append([]byte(nil), raw[:]...), make([]byte, 200)...)); err == nil {
		t.Fatal("a proof with an uncompressed point passed the encoding check")
	}
}

// FuzzUnmarshalVerifyingKey: no input panics or allocates without bound
// (the run has the default memory; a length bomb would abort it), and
// whatever decodes re-encodes to the same bytes.
func FuzzUnmarshalVerifyingKey(f *testing.F) {
	_, _, g1, g2 := bn254.Generators()
	p1, p2 := g1.Bytes(), g2.Bytes()
	var hdr bytes.Buffer
	hdr.WriteString(vkMagic)
	binary.Write(&hdr, binary.BigEndian, uint16(CircuitVersion))
	hdr.Write(make([]byte, 32))
	binary.Write(&hdr, binary.BigEndian, uint32(1))
	binary.Write(&hdr, binary.BigEndian, uint32(1))
	f.Add(lengthBomb(hdr.Bytes(), [][]byte{p1[:], p1[:], p2[:], p2[:], p1[:], p2[:]}))
	f.Add(hdr.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		vk, err := UnmarshalVerifyingKey(data)
		if err != nil {
			return
		}
		b, err := vk.MarshalBinary()
		if err != nil || !bytes.Equal(b, data) {
			t.Fatalf("accepted key does not re-encode to its bytes: %v", err)
		}
	})
}
