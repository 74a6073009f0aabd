package circuits

import (
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// tinyModel is testmodels.Tiny: the default model's layer kinds at a size
// that tests solve in seconds.
func tinyModel(seed uint64) *model.Model { return testmodels.Tiny(seed) }

func randomImages(seed uint64, n int) []pixels.Image { return dataset.RandomImages(seed, n) }
