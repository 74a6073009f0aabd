package zk

import (
	"github.com/consensys/gnark/backend/witness"
	"math/bits"
	"runtime"
)

func bitsTrailingZeros(n uint64) int { return bits.TrailingZeros64(n) }
func reverse64(x uint64) uint64      { return bits.Reverse64(x) }
func runtimeWorkers() int            { return runtime.GOMAXPROCS(0) }

type witnessT = witness.Witness

func bitsLeadingZeros(x uint64) int { return bits.LeadingZeros64(x) }
