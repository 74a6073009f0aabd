package pixels

import (
	"strings"
	"testing"
)

func TestFromBytes(t *testing.T) {
	b := make([]byte, Count)
	for i := range b {
		b[i] = byte(i)
	}
	img, err := FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if img[0] != 0 || img[Count-1] != byte(Count-1) || img[Side] != byte(Side) {
		t.Fatalf("pixels not copied in order: %v %v %v", img[0], img[Count-1], img[Side])
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
