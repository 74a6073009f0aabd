// Package pixels defines the one image type every part of Veil shares: a
// 28×28 grey-scale image, row-major, one byte per pixel, 0 = black
// background and 255 = white ink (the MNIST convention).
//
// It is the only place that knows the image size. The packages on the
// consensus path (circuits, zk, ledger) use it instead of dataset, so that
// they link no image decoder and no MNIST loader; dataset turns files into
// Images, he encrypts them, circuits and zk prove about them, the ledger
// records them as challenge bytes.
package pixels
