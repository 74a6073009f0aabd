package model

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	f, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	info := f.Describe()
	if info.Name != DefaultName || info.Weights != 30634 || len(info.Layers) != 4 || info.Layers[2].Kind != "square" {
		t.Fatalf("Describe: %+v", info)
	}
	var b strings.Builder
	if err := info.WriteText(&b); err != nil || !strings.Contains(b.String(), "layer 2 square") {
		t.Fatalf("WriteText: %v\n%s", err, b.String())
	}
	if got := PolyString([]float64{0.5, -1, 0.25}); got != "0.5 - 1·x + 0.25·x^2" {
		t.Fatalf("PolyString = %q", got)
	}
}
