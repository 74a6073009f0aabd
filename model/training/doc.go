// Package training fits Veil's networks on labelled images: mini-batch
// AdamW with softmax cross-entropy and cosine learning-rate decay, in
// float64 with gonum, optionally on randomly distorted images
// (dataset.Augment). model.Quantize then turns the float network into the
// fixed-point model that is committed, encrypted and proven.
//
// It is a package of its own so that the packages on the consensus path,
// which import model for the fixed-point network, link neither gonum nor
// the MNIST loader.
package training
