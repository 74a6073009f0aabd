package zk

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/veil-project/veil/circuits"
)

// VerifyingKey is a Groth16 verifying key together with the circuit it is
// for (ModelID, batch size, circuit version). It is immutable once made and
// safe for concurrent use.
type VerifyingKey struct {
	ModelID        ModelID
	Batch          int
	Classes        int
	CircuitVersion uint16
	vk             groth16.VerifyingKey
	hash           [32]byte
}

const vkMagic = "VEILVK01"

// NewVerifyingKey wraps a gnark Groth16 verifying key made by a setup for
// the circuit (id, batch, classes). The setup code (zk/mpcsetup) calls it.
func NewVerifyingKey(id ModelID, batch, classes int, vk groth16.VerifyingKey) (*VerifyingKey, error) {
	if batch < 1 || batch > maxBatch || classes < 1 || classes > maxClasses {
		return nil, fmt.Errorf("verifying key: batch %d or classes %d out of range", batch, classes)
	}
	k := &VerifyingKey{ModelID: id, Batch: batch, Classes: classes, CircuitVersion: CircuitVersion, vk: vk}
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, err
	}
	k.hash = sha256.Sum256(b)
	return k, nil
}

// MarshalBinary encodes the key: magic, circuit version, model id, batch
// size, classes, then gnark's compressed verifying key.
func (vk *VerifyingKey) MarshalBinary() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(vkMagic)
	_ = binary.Write(&b, binary.BigEndian, vk.CircuitVersion)
	b.Write(vk.ModelID[:])
	_ = binary.Write(&b, binary.BigEndian, uint32(vk.Batch))
	_ = binary.Write(&b, binary.BigEndian, uint32(vk.Classes))
	if _, err := vk.vk.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("encode verifying key: %w", err)
	}
	return b.Bytes(), nil
}

// UnmarshalVerifyingKey decodes a key written by MarshalBinary.
func UnmarshalVerifyingKey(data []byte) (*VerifyingKey, error) {
	r := bytes.NewReader(data)
	magic := make([]byte, len(vkMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != vkMagic {
		return nil, errors.New("verifying key: bad magic")
	}
	k := &VerifyingKey{}
	var batch, classes uint32
	if binary.Read(r, binary.BigEndian, &k.CircuitVersion) != nil {
		return nil, errors.New("verifying key: truncated")
	}
	if _, err := io.ReadFull(r, k.ModelID[:]); err != nil {
		return nil, errors.New("verifying key: truncated")
	}
	if binary.Read(r, binary.BigEndian, &batch) != nil || binary.Read(r, binary.BigEndian, &classes) != nil {
		return nil, errors.New("verifying key: truncated")
	}
	if batch == 0 || batch > maxBatch || classes == 0 || classes > maxClasses {
		return nil, errors.New("verifying key: bad batch size or classes")
	}
	k.Batch, k.Classes = int(batch), int(classes)
	if err := checkVerifyingKeyEncoding(data[len(data)-r.Len():]); err != nil {
		return nil, err
	}
	k.vk = groth16.NewVerifyingKey(ecc.BN254)
	if _, err := k.vk.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("verifying key: %w", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("verifying key: %d trailing bytes", r.Len())
	}
	k.hash = sha256.Sum256(data)
	return k, nil
}

// Hash is the SHA-256 of the encoded key: it names one setup.
func (vk *VerifyingKey) Hash() [32]byte { return vk.hash }

// ExportSolidity writes gnark's Solidity verifier contract for this key.
func (vk *VerifyingKey) ExportSolidity(w io.Writer) error {
	return vk.vk.ExportSolidity(w)
}

// ProvingKey is what a prover needs: the compiled circuit and the Groth16
// proving key, plus the matching verifying key.
type ProvingKey struct {
	Spec *circuits.Spec
	ccs  constraint.ConstraintSystem
	pk   groth16.ProvingKey
	VK   *VerifyingKey
}

// NewProvingKey assembles the keys a setup made for spec's circuit at batch
// (ccs must be that circuit, compiled by Compile).
func NewProvingKey(spec *circuits.Spec, batch int, ccs *cs.R1CS, pk groth16.ProvingKey, vk groth16.VerifyingKey) (*ProvingKey, error) {
	k, err := NewVerifyingKey(ModelID(spec.ID()), batch, spec.Classes, vk)
	if err != nil {
		return nil, err
	}
	return &ProvingKey{Spec: spec, ccs: ccs, pk: pk, VK: k}, nil
}

// Batch is the number of challenge images per proof.
func (pk *ProvingKey) Batch() int { return pk.VK.Batch }

// Constraints is the number of R1CS constraints of the circuit.
func (pk *ProvingKey) Constraints() int { return pk.ccs.GetNbConstraints() }

const (
	fileCCS = "circuit.r1cs"
	filePK  = "proving.key"
	fileVK  = "verifying.key"
)

// Save writes the keys into dir (mode 0700 directory).
func (pk *ProvingKey) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save keys: %w", err)
	}
	write := func(name string, f func(w io.Writer) error) error {
		tmp := filepath.Join(dir, name+".tmp")
		fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(fh, 1<<20)
		if err := f(bw); err != nil {
			fh.Close()
			return err
		}
		if err := bw.Flush(); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, name))
	}
	if err := write(fileCCS, func(w io.Writer) error { _, err := pk.ccs.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("save circuit: %w", err)
	}
	if err := write(filePK, func(w io.Writer) error { _, err := pk.pk.WriteRawTo(w); return err }); err != nil {
		return fmt.Errorf("save proving key: %w", err)
	}
	vkb, err := pk.VK.MarshalBinary()
	if err != nil {
		return err
	}
	if err := write(fileVK, func(w io.Writer) error { _, err := w.Write(vkb); return err }); err != nil {
		return fmt.Errorf("save verifying key: %w", err)
	}
	return nil
}

// LoadVerifyingKey reads a verifying key file.
func LoadVerifyingKey(path string) (*VerifyingKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read verifying key: %w", err)
	}
	return UnmarshalVerifyingKey(b)
}

// LoadProvingKey reads keys cached by Save for spec. The files are trusted
// (they are the owner's own cache), so points are read without subgroup
// checks.
func LoadProvingKey(dir string, spec *circuits.Spec) (*ProvingKey, error) {
	vk, err := LoadVerifyingKey(filepath.Join(dir, fileVK))
	if err != nil {
		return nil, err
	}
	if vk.ModelID != ModelID(spec.ID()) || vk.CircuitVersion != CircuitVersion {
		return nil, fmt.Errorf("keys in %s are for another circuit", dir)
	}
	read := func(name string, f func(r io.Reader) error) error {
		fh, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer fh.Close()
		return f(bufio.NewReaderSize(fh, 1<<20))
	}
	ccs := new(cs.R1CS)
	if err := read(fileCCS, func(r io.Reader) error { _, err := ccs.ReadFrom(r); return err }); err != nil {
		return nil, fmt.Errorf("read circuit: %w", err)
	}
	pk := groth16.NewProvingKey(ecc.BN254)
	if err := read(filePK, func(r io.Reader) error { _, err := pk.UnsafeReadFrom(r); return err }); err != nil {
		return nil, fmt.Errorf("read proving key: %w", err)
	}
	return &ProvingKey{Spec: spec, ccs: ccs, pk: pk, VK: vk}, nil
}
