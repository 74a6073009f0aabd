package zk

import cs "github.com/consensys/gnark/constraint/bn254"

// Internals for the external tests (package zk_test, which may import
// zk/mpcsetup to make keys).

const FilePK = filePK

func Fits(pk *ProvingKey, ccs *ProvingKey) error { return fits(pk.pk, ccs.ccs.(*cs.R1CS)) }
