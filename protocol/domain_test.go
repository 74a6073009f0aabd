package protocol_test

import (
	"testing"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// The committed models' circuits at the demo's batch (ProofBatch): the
// compact model exists to fit 2^16, the FFT domain that sets the cost of a
// multi-party setup (phase 1 and the group FFTs that open phase 2), where
// the default model needs 2^17.
func TestCommittedModelsDomains(t *testing.T) {
	for _, c := range []struct {
		name   string
		domain uint64
	}{{"compact", 1 << 16}, {"default", 1 << 17}} {
		f, err := model.Committed(c.name)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := circuits.SpecOf(f.Model)
		if err != nil {
			t.Fatal(err)
		}
		r, err := zk.Compile(spec, protocol.ProofBatch)
		if err != nil {
			t.Fatal(err)
		}
		if d := zk.Domain(r); d != c.domain {
			t.Fatalf("%s model: %d constraints, domain %d, want %d", c.name, r.GetNbConstraints(), d, c.domain)
		}
		t.Logf("%s model: %d constraints, domain %d", c.name, r.GetNbConstraints(), zk.Domain(r))
	}
}
