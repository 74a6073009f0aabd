// Package layout holds no code. Its tests check the import graph that the
// README's layout section promises, with `go list`, so that a change which
// breaks it fails the tests instead of surprising a reader:
//
//   - the consensus path (circuits, zk, ledger and its node packages) links
//     no image decoder, no MNIST loader, no training code and no Lattigo;
//   - only he imports Lattigo;
//   - the veil binary links no test double (ledgertest, testmodels).
package layout
