package zk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
)

// Proof is a self-describing proof file: everything a verifier needs
// besides the verifying key.
//
// Encoding (big-endian):
//
//	"VEILPRF1"              8 bytes, magic and format version
//	circuit version         uint16
//	model id                32 bytes (architecture descriptor hash)
//	verifying key hash      32 bytes (names the setup)
//	commitment              32 bytes
//	challenge digest        32 bytes
//	batch, classes          uint16, uint16
//	outputs                 batch·classes int64
//	proof length            uint16
//	Groth16 proof           gnark's compressed encoding (164 bytes)
type Proof struct {
	CircuitVersion uint16   `json:"circuit_version"`
	ModelID        ModelID  `json:"model_id"`
	VKHash         [32]byte `json:"-"`
	Statement
	Groth16 []byte `json:"groth16"`
}

const proofMagic = "VEILPRF1"

// Limits of the parser.
const (
	maxBatch      = 1024
	maxClasses    = 1024
	maxProofBytes = 4096
)

// MarshalBinary encodes the proof file.
func (p *Proof) MarshalBinary() ([]byte, error) {
	if len(p.Outputs) == 0 || len(p.Outputs) > maxBatch {
		return nil, fmt.Errorf("proof: batch of %d", len(p.Outputs))
	}
	classes := len(p.Outputs[0])
	if classes == 0 || classes > maxClasses {
		return nil, fmt.Errorf("proof: %d classes", classes)
	}
	if len(p.Groth16) > maxProofBytes {
		return nil, fmt.Errorf("proof: %d proof bytes", len(p.Groth16))
	}
	var b bytes.Buffer
	b.WriteString(proofMagic)
	w := func(v any) { _ = binary.Write(&b, binary.BigEndian, v) }
	w(p.CircuitVersion)
	b.Write(p.ModelID[:])
	b.Write(p.VKHash[:])
	b.Write(p.Commitment[:])
	b.Write(p.Digest[:])
	w(uint16(len(p.Outputs)))
	w(uint16(classes))
	for i, row := range p.Outputs {
		if len(row) != classes {
			return nil, fmt.Errorf("proof: output row %d has %d values, want %d", i, len(row), classes)
		}
		w(row)
	}
	w(uint16(len(p.Groth16)))
	b.Write(p.Groth16)
	return b.Bytes(), nil
}

// ParseProof decodes a proof file. It rejects truncated or oversized input,
// trailing bytes and Groth16 proofs whose points are not on the curve or
// not in the right subgroup; errors wrap ErrBadProofEncoding.
func ParseProof(data []byte) (*Proof, error) {
	bad := func(f string, a ...any) (*Proof, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadProofEncoding, fmt.Sprintf(f, a...))
	}
	r := bytes.NewReader(data)
	magic := make([]byte, len(proofMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != proofMagic {
		return bad("not a Veil proof file (magic %q)", magic)
	}
	p := &Proof{}
	rd := func(v any) error { return binary.Read(r, binary.BigEndian, v) }
	if err := rd(&p.CircuitVersion); err != nil {
		return bad("truncated header")
	}
	for _, f := range [][]byte{p.ModelID[:], p.VKHash[:], p.Commitment[:], p.Digest[:]} {
		if _, err := io.ReadFull(r, f); err != nil {
			return bad("truncated header")
		}
	}
	var batch, classes uint16
	if rd(&batch) != nil || rd(&classes) != nil {
		return bad("truncated header")
	}
	if batch == 0 || batch > maxBatch || classes == 0 || classes > maxClasses {
		return bad("batch %d × classes %d out of range", batch, classes)
	}
	if r.Len() < int(batch)*int(classes)*8 {
		return bad("truncated outputs")
	}
	p.Outputs = make([][]int64, batch)
	for i := range p.Outputs {
		p.Outputs[i] = make([]int64, classes)
		if err := rd(p.Outputs[i]); err != nil {
			return bad("truncated outputs")
		}
	}
	var n uint16
	if err := rd(&n); err != nil {
		return bad("truncated proof length")
	}
	if n > maxProofBytes || int(n) != r.Len() {
		return bad("proof length %d, %d bytes left", n, r.Len())
	}
	p.Groth16 = make([]byte, n)
	if _, err := io.ReadFull(r, p.Groth16); err != nil {
		return bad("truncated proof")
	}
	if _, err := decodeGroth16(p.Groth16); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeGroth16 parses gnark's encoding (with curve and subgroup checks).
func decodeGroth16(b []byte) (groth16.Proof, error) {
	if err := checkProofEncoding(b); err != nil {
		return nil, err
	}
	pr := groth16.NewProof(ecc.BN254)
	n, err := pr.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: Groth16 proof: %v", ErrBadProofEncoding, err)
	}
	if int(n) != len(b) {
		return nil, fmt.Errorf("%w: Groth16 proof: %d trailing bytes", ErrBadProofEncoding, len(b)-int(n))
	}
	return pr, nil
}
