package zk

import (
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/internal/testmodels"
)

func randomImages(seed uint64, n int) []dataset.Image { return testmodels.RandomImages(seed, n) }
