package protocol

// A party's local secrets under its data directory: model commitment salts,
// cached Groth16 keys (a ceremony of one when there are none) and the
// ledger identity. The veil command's subcommands share them.

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// ProofBatch is the circuit batch size of a verifiable deployment: the k-1
// challenges of one request with k = DefaultBlocks blocks.
const ProofBatch = DefaultBlocks - 1

// LocalStore is a data directory's salts, keys and identity.
type LocalStore struct {
	DataDir string
	// Log gets the warnings and stage lines of a setup; nil: none.
	Log io.Writer
	// Quiet drops the notes (a created salt, cached keys not used).
	Quiet bool
	// Progress gets the progress of a ceremony of one.
	Progress mpcsetup.Progress
}

func (s LocalStore) logf(format string, a ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format, a...)
	}
}

func (s LocalStore) notef(format string, a ...any) {
	if !s.Quiet {
		s.logf(format, a...)
	}
}

// Ensure creates the data directory (or sub, under it), readable by its
// owner only.
func (s LocalStore) Ensure(sub ...string) (string, error) {
	d := filepath.Join(append([]string{s.DataDir}, sub...)...)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	return d, nil
}

// SaltPath is the default salt file of a model: one per model checksum,
// under the data directory, readable by the owner only.
func (s LocalStore) SaltPath(f *model.File) (string, error) {
	d, err := s.Ensure("salts")
	if err != nil {
		return "", err
	}
	return filepath.Join(d, f.Model.Name+"-"+f.SHA256[:16]+".salt"), nil
}

// LoadSalt reads the model's salt from path (default SaltPath), making one
// when create is set and there is none; it returns the path used.
func (s LocalStore) LoadSalt(f *model.File, path string, create bool) (zk.Salt, string, error) {
	if path == "" {
		p, err := s.SaltPath(f)
		if err != nil {
			return zk.Salt{}, "", err
		}
		path = p
	}
	if !create {
		salt, err := zk.LoadSalt(path)
		return salt, path, err
	}
	salt, created, err := zk.LoadOrCreateSalt(path)
	if err == nil && created {
		s.notef("veil: created a new secret salt in %s (keep it: the commitment cannot be proven without it)\n", path)
	}
	return salt, path, err
}

// Keys returns the cached keys for (model, batch) from the key store
// (zk.KeyStore decides whether cached keys are usable), running a ceremony
// of one when there are none and allowSetup is set.
func (s LocalStore) Keys(ctx context.Context, m *model.Model, batch int, allowSetup bool) (*zk.ProvingKey, error) {
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	var makeKeys zk.SetupFunc
	if allowSetup {
		makeKeys = s.SetupOfOne
	}
	pk, _, stale, err := zk.KeyStore{DataDir: s.DataDir}.LoadOrSetup(ctx, spec, batch, "", makeKeys)
	if stale != nil {
		s.notef("veil: not using cached keys: %v\n", stale)
	}
	if err != nil && !allowSetup {
		return nil, fmt.Errorf("no usable keys for this model and batch size %d (run `veil setup --batch %d`): %w", batch, batch, err)
	}
	return pk, err
}

// SetupOfOne runs a ceremony of one (zk.SetupFunc) and writes its
// transcript where the key store keeps the keys.
func (s LocalStore) SetupOfOne(ctx context.Context, spec *circuits.Spec, batch int) (*zk.ProvingKey, error) {
	if _, err := s.Ensure("zk"); err != nil {
		return nil, err
	}
	s.logf("veil: trusted setup as a CEREMONY OF ONE (INSECURE): this machine draws all the secret\n" +
		"veil: randomness, so whoever controls it could forge proofs. Verifiers who do not trust it need\n" +
		"veil: a multi-party ceremony (veil setup init|contribute|verify|close-phase1|finalize).\n")
	start := time.Now()
	pk, tr, err := mpcsetup.SetupOfOne(ctx, spec, batch, s.DataDir, s.Progress)
	if err != nil {
		return nil, err
	}
	dir := zk.KeyStore{DataDir: s.DataDir}.Dir(pk.VK.ModelID, batch, "")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := tr.Save(dir); err != nil {
		return nil, fmt.Errorf("save transcript: %w", err)
	}
	s.logf("veil: setup done in %s: %d constraints (domain 2^%d); keys in %s\n",
		time.Since(start).Round(time.Second), pk.Constraints(), bits.Len64(tr.Domain)-1, dir)
	return pk, nil
}

// InstallKeys saves keys (a finished ceremony's) where Keys finds them.
func (s LocalStore) InstallKeys(pk *zk.ProvingKey) (string, error) {
	if _, err := s.Ensure("zk"); err != nil {
		return "", err
	}
	return zk.KeyStore{DataDir: s.DataDir}.Save(pk, "")
}

// ModelKeys returns the model's salt and proving keys for ProofBatch
// challenges, running a ceremony of one the first time
// (ServiceOptions.Keys).
func (s LocalStore) ModelKeys(ctx context.Context, mf *model.File) (zk.Salt, *zk.ProvingKey, error) {
	salt, _, err := s.LoadSalt(mf, "", true)
	if err != nil {
		return salt, nil, err
	}
	pk, err := s.Keys(ctx, mf.Model, ProofBatch, true)
	return salt, pk, err
}

// ModelSalt is the model's commitment salt, made the first time
// (ServiceOptions.Salt).
func (s LocalStore) ModelSalt(_ context.Context, mf *model.File) (zk.Salt, error) {
	salt, _, err := s.LoadSalt(mf, "", true)
	return salt, err
}

// Identity loads the ledger identity at path (default: the client's,
// <data>/client/identity.key), making it the first time.
func (s LocalStore) Identity(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		dir, err := s.Ensure()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "client", "identity.key")
	}
	return LoadOrCreateIdentity(path)
}

// SelfKey is the public key of the client's ledger identity, the key
// `veil setup contribute --ledger` contributes with by default.
func (s LocalStore) SelfKey() (ed25519.PublicKey, error) {
	k, err := s.Identity("")
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

// Commitment is a model's published commitment and where its salt is.
type Commitment struct {
	Commitment string `json:"commitment"`
	Model      string `json:"model"`
	SHA256     string `json:"sha256"`
	Circuit    string `json:"circuit"`
	SaltFile   string `json:"salt_file"`
}

// Commit commits to the model with its salt (saltFile, default SaltPath;
// made if missing).
func (s LocalStore) Commit(f *model.File, saltFile string) (*Commitment, error) {
	salt, saltPath, err := s.LoadSalt(f, saltFile, true)
	if err != nil {
		return nil, err
	}
	c, err := zk.Commit(f.Model, salt)
	if err != nil {
		return nil, err
	}
	id, err := zk.ModelIDOf(f.Model)
	if err != nil {
		return nil, err
	}
	return &Commitment{Commitment: c.String(), Model: f.Model.Name, SHA256: f.SHA256, Circuit: id.String(), SaltFile: saltPath}, nil
}

func (c *Commitment) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "commitment %s\nmodel      %s (sha256 %s)\ncircuit    %s\nsalt file  %s\n", c.Commitment, c.Model, c.SHA256, c.Circuit, c.SaltFile)
	return err
}

// ProveOptions say what LocalStore.Prove proves.
type ProveOptions struct {
	// ModelPath is the model file (empty: the default model).
	ModelPath string
	// SaltFile is the model's salt (default SaltPath; made if missing).
	SaltFile string
	Images   []pixels.Image
	// Out is the proof file to write; SaveChallenges, when set, a
	// directory for the images as PNGs.
	Out, SaveChallenges string
}

// Prove proves the committed model's outputs on the images, with keys for
// their number (made by a ceremony of one the first time), and writes the
// proof to o.Out.
func (s LocalStore) Prove(ctx context.Context, o ProveOptions) (*zk.ProofFile, error) {
	f, err := model.LoadOrDefault(o.ModelPath)
	if err != nil {
		return nil, err
	}
	salt, _, err := s.LoadSalt(f, o.SaltFile, true)
	if err != nil {
		return nil, err
	}
	pk, err := s.Keys(ctx, f.Model, len(o.Images), true)
	if err != nil {
		return nil, err
	}
	prover, err := zk.NewProver(f.Model, salt, pk)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	proof, err := prover.Prove(ctx, o.Images)
	if err != nil {
		return nil, err
	}
	res := &zk.ProofFile{File: o.Out, ProveTime: time.Since(start).Round(time.Millisecond).String(), Proof: proof}
	b, err := proof.MarshalBinary()
	if err != nil {
		return nil, err
	}
	res.Bytes = len(b)
	if err := os.WriteFile(o.Out, b, 0o644); err != nil {
		return nil, fmt.Errorf("write proof: %w", err)
	}
	if o.SaveChallenges != "" {
		if err := dataset.WriteChallenges(o.SaveChallenges, o.Images); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Serving completes the options of a verifiable deployment from the store:
// the server key (<data>/server/server.key, made the first time), the
// models' keys and salts, and the embedded ledger's directory.
func (s LocalStore) Serving(so *ServiceOptions) error {
	dir, err := s.Ensure("server")
	if err != nil {
		return err
	}
	if so.ServerKey, err = LoadOrCreateIdentity(filepath.Join(dir, "server.key")); err != nil {
		return err
	}
	so.Keys, so.Salt, so.KeyDir, so.LedgerDir = s.ModelKeys, s.ModelSalt, s.DataDir, filepath.Join(s.DataDir, "ledger")
	return nil
}

// CachedKeys returns the cached keys of the model file at modelPath (the
// default model when empty) for batch challenges, without running a setup.
func (s LocalStore) CachedKeys(ctx context.Context, modelPath string, batch int) (*zk.ProvingKey, error) {
	f, err := model.LoadOrDefault(modelPath)
	if err != nil {
		return nil, err
	}
	return s.Keys(ctx, f.Model, batch, false)
}

// SetupModel runs a ceremony of one for the circuit of the model file at
// modelPath (the default model when empty) and installs its keys.
func (s LocalStore) SetupModel(ctx context.Context, modelPath string, batch int) error {
	spec, err := SpecOf(modelPath)
	if err != nil {
		return err
	}
	pk, err := s.SetupOfOne(ctx, spec, batch)
	if err != nil {
		return err
	}
	_, err = s.InstallKeys(pk)
	return err
}
