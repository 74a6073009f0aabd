// Package he is Veil's homomorphic-encryption layer: CKKS parameters, keys,
// the packing of images into ciphertext slots, and the encrypted evaluation
// of a network. Every import of Lattigo (github.com/tuneinsight/lattigo/v6)
// stays inside this package, so the rest of Veil does not depend on its API.
//
// # Scheme and parameters
//
// CKKS over the conjugate-invariant ring Z[X+X⁻¹]/(X^(2N)+1) with N = 2^13,
// which gives N = 8192 real slots (twice the N/2 complex slots of the
// standard ring, and real numbers are all a classifier needs). The
// ciphertext modulus Q has two 60-bit primes and the key-switching modulus P
// one 60-bit prime: log2(QP) ≈ 180 ≤ 218, the bound of the Homomorphic
// Encryption Standard (2018) for N = 8192, a uniform ternary secret and error
// σ = 3.2 at 128-bit classical security. The standard tabulates the
// power-of-two cyclotomic ring; we assume the conjugate-invariant ring of the
// same rank N is as hard (Kim, Song: "Approximate homomorphic encryption over
// the conjugate-invariant ring", 2018), which is the usual assumption.
//
// # Parameters, the Lattigo way
//
// [ParametersLiteral] is what a client and a server share: ring degree,
// prime sizes, input scale and block size. It has a canonical binary
// encoding ([ParametersLiteral.MarshalBinary]) that the server publishes in
// its model description; a client decodes it, checks its security level
// ([ParametersLiteral.SecurityBits]) and compiles it with [NewParameters]
// into [Parameters], which hold the generated primes and make keys,
// ciphertexts and networks. [EvaluationSettings] are the server's own:
// weight scales, the baby-step giant-step ratio, goroutines per evaluation
// and flooding; [Parameters.Compile] takes them with the model.
//
// # Packing
//
// The 8192 slots are split into blocks of [ParametersLiteral.BlockSize] = 1024 slots,
// one image per block, so that one ciphertext carries up to 8 independent
// images and the evaluation treats them all at once (SIMD): a client hides
// its real image among challenge images at no extra latency. In a block, the
// image's 784 pixels sit after M1 zero slots, where M1 is the first layer's
// output size rounded up to a power of two: the zeros make block-local
// matrix products correct with rotations of the whole ciphertext, because a
// rotated slot that crosses into the next block always meets a zero weight.
//
// # Evaluation
//
// The network is a chain of dense layers, one square activation, and dense
// layers (model.Model): consecutive dense layers are folded into one matrix.
// The first matrix (M1×784) is evaluated with the diagonal method for
// rectangular matrices: M1 generalised diagonals in baby-step giant-step form
// (hoisted baby-step rotations, Lattigo's lintrans), then log2(1024/M1)
// rotate-and-add steps. The square is one ciphertext multiplication and
// relinearisation. The last matrix (10×M1) uses 2·16-1 diagonals and
// log2(M1/16) rotate-and-add steps. Rescaling is lazy: the first matrix is
// applied to the fresh ciphertext without rescaling (its weights at a small
// scale), and the single rescale follows the square, so the last matrix runs
// at level 0 where rotations cost half as much; the 60-bit last prime holds
// the scores and the flooding noise.
//
// # Circuit privacy
//
// Before the result leaves the evaluator it is re-randomised: a fresh
// public-key encryption of zero is added (so its second component is
// uniform), and a discrete Gaussian of standard deviation 2^LogFloodSigma is
// added to its first component, to drown the evaluation noise, which depends
// on the weights. See docs/he.md for the bounds.
//
// # Multiparty aggregation
//
// For federated training (docs/training.md) the package wraps Lattigo's
// multiparty package: collective public-key generation ([Party.PublicKeyShare],
// [AggregationContext.CollectivePublicKey]), t-of-N Shamir sharing of the
// collective secret ([Party.DealThreshold], [Party.AcceptThresholdShares]),
// encryption of float vectors under the collective key, exact homomorphic
// sums, and decryption by any t parties through key-switching shares towards
// the zero key, flooded with Gaussian noise ([Party.DecryptionShare],
// [CollectiveKey.Decrypt]). [DefaultAggregationParameters]: N = 2^13 real
// slots, one 60-bit prime, no P (log2 Q = 60 ≤ 218: 128-bit), scale 2^50,
// smudging σ = 2^25. Wire formats (VAC1, VKS1, VCK1, VTS1, VDS1, VPT1) are
// in multiparty_codec.go; their decoders are fuzzed.
package he
