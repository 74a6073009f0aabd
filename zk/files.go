package zk

// Proof and key files, as the veil command writes and checks them.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// VerifyFileOptions say what to check a proof file against.
type VerifyFileOptions struct {
	// Proof is the proof file.
	Proof string
	// VK is the verifying key file (default: the cached key for the
	// proof's circuit and batch size under DataDir).
	VK, DataDir string
	// Commitment is the model owner's published commitment; nil: the
	// proof's own claim.
	Commitment *Commitment
	// Images are the challenge images; nil: the proof's own digest.
	Images []pixels.Image
}

// FileVerification is what VerifyFile checked, with notes on what was
// taken from the proof itself.
type FileVerification struct {
	Statement
	Notes []string `json:"notes,omitempty"`
}

// VerifyFile verifies a proof file.
func VerifyFile(o VerifyFileOptions) (*FileVerification, error) {
	data, err := os.ReadFile(o.Proof)
	if err != nil {
		return nil, fmt.Errorf("read proof: %w", err)
	}
	p, err := ParseProof(data)
	if err != nil {
		return nil, fmt.Errorf("proof rejected: %w", err)
	}
	if o.VK == "" {
		o.VK = filepath.Join(KeyDir(o.DataDir, p.ModelID, len(p.Outputs)), "verifying.key")
	}
	vk, err := LoadVerifyingKey(o.VK)
	if err != nil {
		return nil, err
	}
	res := &FileVerification{Statement: p.Statement}
	if o.Commitment == nil {
		res.Notes = append(res.Notes, "commitment taken from the proof file (pass --commitment to check it is the published one)")
	} else {
		res.Commitment = *o.Commitment
	}
	if o.Images == nil {
		res.Notes = append(res.Notes, "challenge digest taken from the proof file (pass the challenge images to check it)")
	} else {
		res.Digest = ChallengeDigest(o.Images)
	}
	if err := Verify(vk, res.Statement, data); err != nil {
		return nil, fmt.Errorf("proof rejected: %w", err)
	}
	return res, nil
}

// WriteText prints OK and the notes.
func (r *FileVerification) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "OK: commitment %s, %d challenges, digest %s\n", r.Commitment, len(r.Outputs), r.Digest)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// ProofFile is a proof written to a file.
type ProofFile struct {
	File      string `json:"file"`
	Bytes     int    `json:"bytes"`
	ProveTime string `json:"prove_time"`
	Proof     *Proof `json:"proof"`
}

// WriteText prints the file, the statement and every challenge's class.
func (r *ProofFile) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "proof      %s (%d bytes, Groth16 part %d bytes), proved in %s\n", r.File, r.Bytes, len(r.Proof.Groth16), r.ProveTime)
	fmt.Fprintf(w, "commitment %s\ndigest     %s\n", r.Proof.Commitment, r.Proof.Digest)
	for i, o := range r.Proof.Outputs {
		fmt.Fprintf(w, "challenge %d: class %d, scores %v\n", i, model.Class(o), o)
	}
	return nil
}

// VKFile is a verifying key written to a file.
type VKFile struct {
	File   string `json:"file"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// WriteVerifyingKey writes vk to path.
func WriteVerifyingKey(vk *VerifyingKey, path string) (*VKFile, error) {
	b, err := vk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	h := vk.Hash()
	return &VKFile{path, len(b), fmt.Sprintf("%x", h)}, nil
}

// WriteText prints the file, its size and hash.
func (r *VKFile) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "wrote %s (%d bytes), sha256 %s\n", r.File, r.Bytes, r.SHA256)
	return err
}

// ExportSolidityFile writes gnark's Solidity verifier of vk to path, or to
// stdout when path is "-".
func ExportSolidityFile(vk *VerifyingKey, path string, stdout io.Writer) error {
	if path == "-" {
		return vk.ExportSolidity(stdout)
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := vk.ExportSolidity(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
