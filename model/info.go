package model

import (
	"fmt"
	"io"
)

// LayerInfo describes one layer of a model file.
type LayerInfo struct {
	Kind       string `json:"kind"`
	In         int    `json:"in"`
	Out        int    `json:"out"`
	WeightBits int    `json:"weight_bits,omitempty"`
	Shift      int    `json:"shift"`
	// Coeffs (real, constant first) and Approx describe a poly layer.
	Coeffs []float64      `json:"coeffs,omitempty"`
	Approx *Approximation `json:"approx,omitempty"`
}

// Info is a model file's architecture, size and checksum (veil model info).
type Info struct {
	Name     string        `json:"name"`
	SHA256   string        `json:"sha256"`
	Weights  int           `json:"weights"`
	Layers   []LayerInfo   `json:"layers"`
	Training *TrainingInfo `json:"training,omitempty"`
}

// Describe returns the file's Info.
func (f *File) Describe() *Info {
	out := &Info{Name: f.Model.Name, SHA256: f.SHA256, Weights: f.Model.NumWeights(), Training: f.Training}
	for _, l := range f.Model.Layers {
		li := LayerInfo{Kind: string(l.Kind), In: l.In, Out: l.Out, WeightBits: l.WeightBits, Shift: l.Shift, Approx: l.Approx}
		if l.Kind == KindPoly {
			li.Coeffs = l.RealCoeffs()
		}
		out.Layers = append(out.Layers, li)
	}
	return out
}

// WriteText prints one line per layer.
func (m *Info) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "model   %s\nsha256  %s\nweights %d\n", m.Name, m.SHA256, m.Weights)
	for i, l := range m.Layers {
		fmt.Fprintf(w, "layer %d %-6s %4d -> %-4d shift %d", i, l.Kind, l.In, l.Out, l.Shift)
		if a := l.Approx; a != nil {
			fmt.Fprintf(w, "  %s ≈ %s, fitted on [%.2f, %.2f] (max error %.3f; seen in training [%.2f, %.2f])", PolyString(l.Coeffs), a.Function, a.Lo, a.Hi, a.MaxError, a.ObservedLo, a.ObservedHi)
		}
		fmt.Fprintln(w)
	}
	if m.Training != nil {
		fmt.Fprintf(w, "test accuracy (recorded at training): float %.2f%%, fixed point %.2f%%\n", 100*m.Training.FloatAccuracy, 100*m.Training.FixedAccuracy)
	}
	return nil
}

// PolyString prints c0 + c1·x + c2·x² ...
func PolyString(c []float64) string {
	s := fmt.Sprintf("%.4g", c[0])
	for k := 1; k < len(c); k++ {
		sign, v := "+", c[k]
		if v < 0 {
			sign, v = "-", -v
		}
		s += fmt.Sprintf(" %s %.4g·x", sign, v)
		if k > 1 {
			s += fmt.Sprintf("^%d", k)
		}
	}
	return s
}
