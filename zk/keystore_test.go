package zk_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/zk"
)

// The key store's load-or-setup policy: nothing cached runs the setup once
// and caches; a second call loads; keys of another batch size copied into
// the directory, keys whose proving key does not fit the circuit, and a
// missing proving key are each refused, never proved against.
func TestKeyStore(t *testing.T) {
	if testing.Short() {
		t.Skip("makes keys")
	}
	ctx := context.Background()
	spec, err := circuits.SpecOf(tinyModel(1))
	if err != nil {
		t.Fatal(err)
	}
	store := zk.KeyStore{DataDir: t.TempDir()}
	phase1 := t.TempDir()
	if _, err := store.Load(spec, 1, ""); !errors.Is(err, zk.ErrNoKeys) {
		t.Fatalf("empty store: %v", err)
	}
	runs := 0
	setup := func(ctx context.Context, spec *circuits.Spec, batch int) (*zk.ProvingKey, error) {
		runs++
		return testKeys(t, spec, batch, phase1), nil
	}
	pk1, made, _, err := store.LoadOrSetup(ctx, spec, 1, "", setup)
	if err != nil || !made {
		t.Fatalf("first LoadOrSetup: made=%v, %v", made, err)
	}
	again, made, _, err := store.LoadOrSetup(ctx, spec, 1, "", setup)
	if err != nil || made || runs != 1 || again.VK.Hash() != pk1.VK.Hash() {
		t.Fatalf("second LoadOrSetup: made=%v runs=%d %v", made, runs, err)
	}
	// Another setup's label is another directory.
	if _, err := store.Load(spec, 1, "ceremony-abc"); !errors.Is(err, zk.ErrNoKeys) {
		t.Fatalf("other setup: %v", err)
	}
	if _, err := store.Load(spec, 1, "../x"); err == nil {
		t.Fatal("bad setup label accepted")
	}

	// Keys for batch 2 placed where batch 1's belong: stale.
	pk2 := testKeys(t, spec, 2, phase1)
	dir1 := store.Dir(pk1.VK.ModelID, 1, "")
	if err := pk2.Save(dir1); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(spec, 1, ""); !errors.Is(err, zk.ErrStaleKeys) {
		t.Fatalf("batch-2 keys for batch 1: %v", err)
	}
	// The stale keys are replaced by LoadOrSetup, which says why.
	_, made, stale, err := store.LoadOrSetup(ctx, spec, 1, "", setup)
	if err != nil || !made || !errors.Is(stale, zk.ErrStaleKeys) {
		t.Fatalf("stale keys not replaced: made=%v stale=%v %v", made, stale, err)
	}

	// A proving key that does not fit the circuit (here: batch 2's under
	// batch 1's verifying key, as after a circuit change with no version
	// bump): refused by the shape check.
	if err := zk.Fits(pk2, pk1); err == nil {
		t.Fatal("batch-2 proving key fits the batch-1 circuit")
	} else {
		t.Logf("misfit: %v", err)
	}
	os.Rename(filepath.Join(dir1, zk.FilePK), filepath.Join(dir1, "moved"))
	if _, err := store.Load(spec, 1, ""); !errors.Is(err, zk.ErrNoKeys) {
		t.Fatalf("missing proving key: %v", err)
	}
}
