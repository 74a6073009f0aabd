package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

func newModelCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Inspect model files and commit to them"}
	var path, saltFile string
	info := &cobra.Command{Use: "info", Short: "Print a model's architecture, size and checksum", Args: cobra.NoArgs}
	withResult(info, func(*cobra.Command, []string) (result, error) {
		f, err := loadModel(path)
		if err != nil {
			return nil, err
		}
		out := modelInfo{Name: f.Model.Name, SHA256: f.SHA256, Weights: f.Model.NumWeights(), Training: f.Training}
		for _, l := range f.Model.Layers {
			li := layerInfo{Kind: string(l.Kind), In: l.In, Out: l.Out, WeightBits: l.WeightBits, Shift: l.Shift, Approx: l.Approx}
			if l.Kind == model.KindPoly {
				li.Coeffs = l.RealCoeffs()
			}
			out.Layers = append(out.Layers, li)
		}
		return out, nil
	})
	commit := &cobra.Command{
		Use:   "commit",
		Short: "Print the model's Poseidon2 commitment (creating its secret salt if needed)",
		Long: `Print the commitment to a model: a Poseidon2 hash over BN254 of the
model's architecture descriptor, a secret random salt and its packed weights.
Publish the commitment; keep the salt (default: a 0600 file under the data
directory) and the weights private. Proofs show that the committed model
produced given outputs.`,
		Args: cobra.NoArgs,
	}
	withResult(commit, func(*cobra.Command, []string) (result, error) {
		f, err := loadModel(path)
		if err != nil {
			return nil, err
		}
		salt, saltPath, err := g.loadSalt(f, saltFile, true)
		if err != nil {
			return nil, err
		}
		c, err := zk.Commit(f.Model, salt)
		if err != nil {
			return nil, err
		}
		id, err := zk.ModelIDOf(f.Model)
		if err != nil {
			return nil, err
		}
		return commitOutput{Commitment: c.String(), Model: f.Model.Name, SHA256: f.SHA256, Circuit: id.String(), SaltFile: saltPath}, nil
	})
	for _, c := range []*cobra.Command{info, commit} {
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	}
	commit.Flags().StringVar(&saltFile, "salt-file", "", "salt file (default: <data>/salts/<model>-<sha256>.salt, created if missing)")
	cmd.AddCommand(info, commit)
	return cmd
}

type layerInfo struct {
	Kind       string `json:"kind"`
	In         int    `json:"in"`
	Out        int    `json:"out"`
	WeightBits int    `json:"weight_bits,omitempty"`
	Shift      int    `json:"shift"`
	// Coeffs (real, constant first) and Approx describe a poly layer.
	Coeffs []float64            `json:"coeffs,omitempty"`
	Approx *model.Approximation `json:"approx,omitempty"`
}

type modelInfo struct {
	Name     string              `json:"name"`
	SHA256   string              `json:"sha256"`
	Weights  int                 `json:"weights"`
	Layers   []layerInfo         `json:"layers"`
	Training *model.TrainingInfo `json:"training,omitempty"`
}

func (m modelInfo) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "model   %s\nsha256  %s\nweights %d\n", m.Name, m.SHA256, m.Weights)
	for i, l := range m.Layers {
		fmt.Fprintf(w, "layer %d %-6s %4d -> %-4d shift %d", i, l.Kind, l.In, l.Out, l.Shift)
		if a := l.Approx; a != nil {
			fmt.Fprintf(w, "  %s ≈ %s, fitted on [%.2f, %.2f] (max error %.3f; seen in training [%.2f, %.2f])", polyString(l.Coeffs), a.Function, a.Lo, a.Hi, a.MaxError, a.ObservedLo, a.ObservedHi)
		}
		fmt.Fprintln(w)
	}
	if m.Training != nil {
		fmt.Fprintf(w, "test accuracy (recorded at training): float %.2f%%, fixed point %.2f%%\n", 100*m.Training.FloatAccuracy, 100*m.Training.FixedAccuracy)
	}
	return nil
}

type commitOutput struct {
	Commitment string `json:"commitment"`
	Model      string `json:"model"`
	SHA256     string `json:"sha256"`
	Circuit    string `json:"circuit"`
	SaltFile   string `json:"salt_file"`
}

func (c commitOutput) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "commitment %s\nmodel      %s (sha256 %s)\ncircuit    %s\nsalt file  %s\n", c.Commitment, c.Model, c.SHA256, c.Circuit, c.SaltFile)
	return err
}

// polyString prints c0 + c1·x + c2·x² ...
func polyString(c []float64) string {
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
