package zk

import (
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/pixels"
)

func randomImages(seed uint64, n int) []pixels.Image { return dataset.RandomImages(seed, n) }
