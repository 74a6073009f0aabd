package pixels

import (
	"strings"
	"testing"
)

func TestFromBytes(t *testing.T) {
	b := make([]byte, Count)
	for i := range b {
		b[i] = byte(i % 251)
	}
	img, err := FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range img {
		if img[i] != byte(i%251) {
			t.Fatalf("pixel %d is %d, want %d", i, img[i], i%251)
		}
	}
	b[0] = 9 // the image is a copy
	if img[0] != 0 {
		t.Fatal("FromBytes aliases its input")
	}
	for _, n := range []int{0, Count - 1, Count + 1} {
		if _, err := FromBytes(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "want 784") {
			t.Fatalf("%d bytes: err %v, want a size error", n, err)
		}
	}
}
