// Package model defines Veil's neural networks: their architecture and the
// fixed-point form that is committed to and proven (training is in
// model/training, so that the consensus path, which imports this package,
// links no training code).
//
// A network is a sequence of layers of two kinds, both friendly to
// homomorphic encryption and to arithmetic circuits: dense (affine) layers and
// the square activation x -> x^2. There is no ReLU and no max-pooling, which
// CKKS could only approximate with high-degree polynomials.
//
// Three forms of the same network exist:
//
//   - [Float]: float64 weights, what training produces.
//   - [Model]: the fixed-point network. Weights are small signed integers
//     with a power-of-two scale per layer; every layer's output is rounded to
//     an integer by an arithmetic shift. Its integer semantics, implemented by
//     [Model.Forward], are exact and are what the zk-SNARK proves: this is the
//     "committed model".
//   - [Model.Dequantize]: the same weights as float64, without the
//     intermediate roundings. This is what CKKS evaluates; the distance
//     between its outputs and the exact fixed-point outputs is bounded by
//     the tolerance measured with [Model.Tolerance].
//
// A Model is stored as a small JSON file (format "veil-model/1") that holds the
// architecture, the integer weights and a SHA-256 checksum of its content.
package model
