package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/internal/stats"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// zkArtifact is a real proof for the ledger stage.
type zkArtifact struct {
	spec       []byte // the model's canonical spec
	modelName  string
	vk         []byte
	commitment zk.Commitment
	images     []pixels.Image
	outputs    [][]int64
	proofFile  []byte
}

// benchSalt is the salt of the benchmark's commitments (never a real
// model owner's).
var benchSalt = zk.Salt{31: 7}

func (r *runner) zkModel() (*model.Model, error) {
	if r.s.ZK.Model == "tiny" {
		return tinyModel()
	}
	return r.def, nil
}

// zkCacheRoot is where the benchmark caches its own Groth16 keys.
func (r *runner) zkCacheRoot() string {
	if r.opt.DataDir == "" {
		return ""
	}
	return filepath.Join(r.opt.DataDir, "bench")
}

// cachedKeyDirs returns the directories that may hold keys for (spec,
// batch), in order of preference: those of `veil setup` (read only), then
// the benchmark's cache.
func (r *runner) cachedKeyDirs(id zk.ModelID, batch int) []string {
	if r.opt.DataDir == "" {
		return nil
	}
	var out []string
	for _, root := range []string{r.opt.DataDir, r.zkCacheRoot()} {
		d := zk.KeyDir(root, id, batch)
		if _, err := os.Stat(filepath.Join(d, "proving.key")); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func (r *runner) costZK() float64 {
	s := r.s.ZK
	setup, prove := 150.0, 4.0
	if s.Model == "tiny" {
		setup, prove = 4, 0.3
	}
	var id zk.ModelID
	if m, err := r.zkModel(); err == nil {
		if spec, err := circuits.SpecOf(m); err == nil {
			id = zk.ModelID(spec.ID())
		}
	}
	var t float64
	for _, b := range s.Batches {
		if len(r.cachedKeyDirs(id, b)) == 0 {
			t += setup
		} else {
			t += 3 // loading the keys
		}
		t += float64(s.ProveReps)*prove + float64(s.VerifyReps)*0.004
	}
	return t
}

// runZK proves batches of challenge images with Groth16 and verifies the
// proofs. Keys come from the data directory when cached; otherwise a
// ceremony-of-one setup runs (timed once, as "setup") and its keys are
// cached under <data>/bench/zk (never where `veil prove` looks).
func (r *runner) runZK(ctx context.Context) error {
	s := r.s.ZK
	m, err := r.zkModel()
	if err != nil {
		return err
	}
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return err
	}
	id := zk.ModelID(spec.ID())
	root := r.zkCacheRoot()
	if root == "" {
		tmp, err := os.MkdirTemp("", "veil-bench-zk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	batches := slices.Clone(s.Batches)
	slices.Sort(batches)
	for _, batch := range batches {
		p := Params{Batch: batch, Model: s.Model}
		pk, err := r.zkKeys(ctx, spec, id, batch, root, p)
		if err != nil {
			return fmt.Errorf("batch %d: %w", batch, err)
		}
		r.addCount(StageZK, "constraints", p, pk.Constraints())
		vkb, err := pk.VK.MarshalBinary()
		if err != nil {
			return err
		}
		r.addSize(StageZK, "verifying_key", p, len(vkb))
		prover, err := zk.NewProver(m, benchSalt, pk)
		if err != nil {
			return err
		}
		imgs := r.imageArrays(0, batch)
		var prove []float64
		var proof *zk.Proof
		for rep := 0; rep < s.ProveReps; rep++ {
			t0 := time.Now()
			proof, err = prover.Prove(ctx, imgs)
			if err != nil {
				return fmt.Errorf("batch %d: %w", batch, err)
			}
			prove = append(prove, stats.Milliseconds(time.Since(t0)))
		}
		r.addLatency(StageZK, "prove", p, prove)
		pb, err := proof.MarshalBinary()
		if err != nil {
			return err
		}
		r.addSize(StageZK, "groth16_proof", p, len(proof.Groth16))
		r.addSize(StageZK, "proof_file", p, len(pb))
		var verify []float64
		for rep := 0; rep <= s.VerifyReps; rep++ {
			t0 := time.Now()
			if err := zk.Verify(pk.VK, proof.Statement, pb); err != nil {
				return fmt.Errorf("batch %d: own proof rejected: %w", batch, err)
			}
			if rep > 0 {
				verify = append(verify, stats.Milliseconds(time.Since(t0)))
			}
		}
		r.addLatency(StageZK, "verify", p, verify)
		if r.zkArt == nil {
			r.zkArt = &zkArtifact{modelName: m.Name, spec: spec.Canonical(), vk: vkb, commitment: prover.Commitment(), images: imgs, outputs: proof.Outputs, proofFile: pb}
		}
		r.tick(float64(s.ProveReps)*map[bool]float64{true: 0.3, false: 4}[s.Model == "tiny"]+float64(s.VerifyReps)*0.004, fmt.Sprintf("zk prove and verify, batch %d", batch))
	}
	return nil
}

// zkKeys loads cached keys (those of `veil setup`, then the benchmark's
// own; zk.KeyStore refuses stale ones) or runs and caches a ceremony-of-one
// setup under root.
func (r *runner) zkKeys(ctx context.Context, spec *circuits.Spec, id zk.ModelID, batch int, root string, p Params) (*zk.ProvingKey, error) {
	if r.opt.DataDir != "" {
		if pk, err := (zk.KeyStore{DataDir: r.opt.DataDir}).Load(spec, batch, ""); err == nil {
			r.tick(3, fmt.Sprintf("zk keys loaded, batch %d", batch))
			return pk, nil
		} else if !errors.Is(err, zk.ErrNoKeys) {
			r.logf("zk: keys of veil setup unusable: %v", err)
		}
	}
	setup := func(ctx context.Context, spec *circuits.Spec, batch int) (*zk.ProvingKey, error) {
		r.logf("zk: no cached keys for batch %d: running a ceremony-of-one Groth16 setup (cached under %s for later runs)", batch, root)
		t0 := time.Now()
		pk, _, err := mpcsetup.SetupOfOne(ctx, spec, batch, root, nil)
		if err == nil {
			r.addLatency(StageZK, "setup", p, []float64{stats.Milliseconds(time.Since(t0))})
		}
		return pk, err
	}
	pk, made, stale, err := zk.KeyStore{DataDir: root}.LoadOrSetup(ctx, spec, batch, "", setup)
	if stale != nil {
		r.logf("zk: cached keys unusable: %v", stale)
	}
	if err != nil {
		return nil, err
	}
	if made {
		r.tick(map[bool]float64{true: 4, false: 150}[r.s.ZK.Model == "tiny"], fmt.Sprintf("zk setup, batch %d", batch))
	} else {
		r.tick(3, fmt.Sprintf("zk keys loaded, batch %d", batch))
	}
	return pk, nil
}
