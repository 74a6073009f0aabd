package pixels

import "fmt"

// Side is the width and height of an image.
const Side = 28

// Count is the number of pixels of an image: the input size of every model.
const Count = Side * Side

// Image is one Side×Side grey-scale image, row-major.
type Image [Count]uint8

// FromBytes returns the image whose pixels are b, which must hold exactly
// Count bytes (the form the ledger records challenges in).
func FromBytes(b []byte) (Image, error) {
	var img Image
	if len(b) != Count {
		return img, fmt.Errorf("image has %d bytes, want %d", len(b), Count)
	}
	copy(img[:], b)
	return img, nil
}
