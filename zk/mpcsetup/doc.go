// Package mpcsetup makes Groth16 keys for Veil's circuits with gnark's
// multi-party computation (github.com/consensys/gnark/backend/groth16/bn254/mpcsetup):
// phase 1 (powers of τ, circuit independent) and phase 2 (per circuit),
// each sealed with a random beacon. The keys are sound if at least one
// contributor to each phase destroyed their randomness.
//
//   - [SetupOfOne] runs both phases with this process as the only
//     contributor: INSECURE against whoever controls the machine, for local
//     experiments only.
//   - Ceremony* run a multi-party ceremony in a shared directory.
//
// The slow, circuit-specific parts of gnark's MPC (the Lagrange basis and
// the phase-2 initialisation) are re-implemented here with byte-identical
// output (mpc.go). Package zk proves and verifies; it does not import this
// package, so the consensus path links no setup code.
package mpcsetup
