package zk

import (
	"fmt"
	"io"

	"github.com/veil-project/veil/circuits"
)

// CircuitInfo describes the circuit of a model's spec at a batch size
// (`veil zk info`).
type CircuitInfo struct {
	Circuit     string               `json:"circuit"` // the spec's ID, hex
	Version     int                  `json:"version"` // CircuitVersion
	Batch       int                  `json:"batch"`
	Constraints int                  `json:"constraints"` // R1CS
	Domain      uint64               `json:"domain"`      // FFT domain of the setup
	Layers      []circuits.LayerSpec `json:"layers"`
}

// Describe compiles spec's circuit for batch and describes it.
func Describe(spec *circuits.Spec, batch int) (*CircuitInfo, error) {
	r, err := Compile(spec, batch)
	if err != nil {
		return nil, err
	}
	return &CircuitInfo{Circuit: fmt.Sprintf("%x", spec.ID()), Version: CircuitVersion, Batch: batch,
		Constraints: r.GetNbConstraints(), Domain: Domain(r), Layers: spec.Layers}, nil
}

// WriteText prints the description, one line per layer.
func (c *CircuitInfo) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "circuit %s (version %d), batch %d: %d R1CS constraints, domain %d\n", c.Circuit, c.Version, c.Batch, c.Constraints, c.Domain)
	for i, l := range c.Layers {
		fmt.Fprintf(w, "layer %d %-6s %4d -> %-4d shift %-2d accumulator in [%d, %d]\n", i, l.Kind, l.In, l.Out, l.Shift, l.AccLo, l.AccHi)
	}
	return nil
}
