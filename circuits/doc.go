// Package circuits holds the gnark circuit that proves "the committed model
// maps these challenge images to these outputs", together with the native
// (outside the circuit) computations that must agree with it bit for bit:
// the Poseidon2 sponge, the packing of weights and pixels into field
// elements, the model commitment and the challenge digest.
//
// The circuit reproduces model.Model.Forward exactly. Several
// multiply-accumulates share one R1CS multiplication by packing the weights
// of several output rows into one field element (row r at bit offset S·r),
// and the packed accumulator is split back into per-row slots that are
// range-checked with a log-derivative lookup; the rounding shift of each
// layer is folded into that split. See docs/zk.md.
package circuits
