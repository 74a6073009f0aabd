package zk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	g16 "github.com/consensys/gnark/backend/groth16/bn254"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/veil-project/veil/circuits"
)

// KeyStore caches Groth16 keys under a data directory, one directory per
// circuit, batch size, circuit version and setup:
//
//	<data>/zk/<circuit id[:8]>-b<batch>-v<version>            a local ceremony of one
//	<data>/zk/<circuit id[:8]>-b<batch>-v<version>-<setup>    keys of a named setup (e.g. a ledger ceremony)
//
// and decides when cached keys can be used: their verifying key must be for
// this circuit and circuit version, and their proving key must fit the
// circuit compiled now (same domain, wires and commitments), so a circuit
// changed without a version bump is detected rather than proved against.
// The keys are the owner's own cache: they are read without subgroup
// checks. Keys are never committed to git.
type KeyStore struct {
	// DataDir is the data directory (--data, $VEIL_HOME).
	DataDir string
}

// Errors from KeyStore.Load, wrapped with details.
var (
	// ErrNoKeys: nothing is cached for this circuit and setup.
	ErrNoKeys = errors.New("no cached keys")
	// ErrStaleKeys: the cached keys are for another version of the circuit.
	ErrStaleKeys = errors.New("cached keys are stale")
)

var setupLabel = regexp.MustCompile(`^[0-9a-z][0-9a-z._-]{0,63}$`)

// Dir is where keys for (id, batch) from setup are cached. setup is empty
// for a local ceremony of one, else a short label naming the setup (lower
// case letters, digits, '.', '_', '-').
func (s KeyStore) Dir(id ModelID, batch int, setup string) string {
	name := fmt.Sprintf("%x-b%d-v%d", id[:8], batch, CircuitVersion)
	if setup != "" {
		name += "-" + setup
	}
	return filepath.Join(s.DataDir, "zk", name)
}

// KeyDir is where the keys of a local ceremony of one for (id, batch) are
// cached under dataDir.
func KeyDir(dataDir string, id ModelID, batch int) string {
	return KeyStore{DataDir: dataDir}.Dir(id, batch, "")
}

// Load returns the cached keys for spec's circuit at batch from setup. It
// compiles the circuit (a few seconds for the default model) and proves
// with that constraint system, checking that the cached proving key fits
// it; errors wrap ErrNoKeys or ErrStaleKeys.
func (s KeyStore) Load(spec *circuits.Spec, batch int, setup string) (*ProvingKey, error) {
	if setup != "" && !setupLabel.MatchString(setup) {
		return nil, fmt.Errorf("key store: bad setup label %q", setup)
	}
	dir := s.Dir(ModelID(spec.ID()), batch, setup)
	vk, err := LoadVerifyingKey(filepath.Join(dir, fileVK))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w for circuit %x, batch %d in %s", ErrNoKeys, vkPrefix(spec), batch, dir)
	}
	if err != nil {
		return nil, err
	}
	if vk.ModelID != ModelID(spec.ID()) || vk.CircuitVersion != CircuitVersion || vk.Batch != batch {
		return nil, fmt.Errorf("%w: the keys in %s are for circuit %x version %d batch %d", ErrStaleKeys, dir, vk.ModelID[:8], vk.CircuitVersion, vk.Batch)
	}
	ccs, err := Compile(spec, batch)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, filePK))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKeys, err)
	}
	defer f.Close()
	pk := groth16.NewProvingKey(ecc.BN254)
	if _, err := pk.UnsafeReadFrom(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return nil, fmt.Errorf("read proving key %s: %w", dir, err)
	}
	if err := fits(pk, ccs); err != nil {
		return nil, fmt.Errorf("%w: the keys in %s %v (the circuit changed without a version bump?)", ErrStaleKeys, dir, err)
	}
	return &ProvingKey{Spec: spec, ccs: ccs, pk: pk, VK: vk}, nil
}

// fits checks that a proving key was made for a constraint system of this
// shape: the same FFT domain, number of wires and commitments.
func fits(pk groth16.ProvingKey, ccs *cs.R1CS) error {
	k, ok := pk.(*g16.ProvingKey)
	if !ok {
		return errors.New("are not BN254 keys")
	}
	internal, secret, public := ccs.GetNbVariables()
	wires := internal + secret + public
	if k.Domain.Cardinality != Domain(ccs) {
		return fmt.Errorf("are for a domain of %d, the circuit needs %d", k.Domain.Cardinality, Domain(ccs))
	}
	if len(k.InfinityA) != wires {
		return fmt.Errorf("are for %d wires, the circuit has %d", len(k.InfinityA), wires)
	}
	if nc := len(ccs.CommitmentInfo.(interface{ CommitmentIndexes() []int }).CommitmentIndexes()); len(k.CommitmentKeys) != nc {
		return fmt.Errorf("have %d commitment keys, the circuit %d", len(k.CommitmentKeys), nc)
	}
	return nil
}

// Save caches pk as the keys of setup (empty: a local ceremony of one).
func (s KeyStore) Save(pk *ProvingKey, setup string) (dir string, err error) {
	if setup != "" && !setupLabel.MatchString(setup) {
		return "", fmt.Errorf("key store: bad setup label %q", setup)
	}
	dir = s.Dir(pk.VK.ModelID, pk.VK.Batch, setup)
	return dir, pk.Save(dir)
}

// SetupFunc makes keys for spec's circuit at batch when none are cached.
type SetupFunc func(ctx context.Context, spec *circuits.Spec, batch int) (*ProvingKey, error)

// LoadOrSetup returns the cached keys of setup, or, when there are none or
// they are stale, makes them with makeKeys and caches them. made reports
// whether makeKeys ran; stale, when not nil, says why cached keys were not
// used.
func (s KeyStore) LoadOrSetup(ctx context.Context, spec *circuits.Spec, batch int, setup string, makeKeys SetupFunc) (pk *ProvingKey, made bool, stale error, err error) {
	pk, err = s.Load(spec, batch, setup)
	if err == nil {
		return pk, false, nil, nil
	}
	if !errors.Is(err, ErrNoKeys) && !errors.Is(err, ErrStaleKeys) {
		return nil, false, nil, err
	}
	if errors.Is(err, ErrStaleKeys) {
		stale = err
	}
	if makeKeys == nil {
		return nil, false, stale, err
	}
	if pk, err = makeKeys(ctx, spec, batch); err != nil {
		return nil, false, stale, err
	}
	if _, err := s.Save(pk, setup); err != nil {
		return nil, false, stale, fmt.Errorf("cache keys: %w", err)
	}
	return pk, true, stale, nil
}

func vkPrefix(spec *circuits.Spec) []byte { id := spec.ID(); return id[:8] }
