package zk_test

import (
	"context"
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

func tinyModel(seed uint64) *model.Model { return testmodels.Tiny(seed) }

func randomImages(seed uint64, n int) []pixels.Image { return dataset.RandomImages(seed, n) }

// testKeys makes keys for spec's circuit by a ceremony of one, with phase 1
// cached in dataDir (shared by the tests that pass the same one).
func testKeys(t testing.TB, spec *circuits.Spec, batch int, dataDir string) *zk.ProvingKey {
	t.Helper()
	pk, _, err := mpcsetup.SetupOfOne(context.Background(), spec, batch, dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}
