package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newModelCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Inspect model files",
	}
	var path string
	var asJSON bool
	info := &cobra.Command{
		Use:   "info",
		Short: "Print a model's architecture, size and checksum",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadModel(path)
			if err != nil {
				return err
			}
			m := f.Model
			type layerInfo struct {
				Kind       string `json:"kind"`
				In         int    `json:"in"`
				Out        int    `json:"out"`
				WeightBits int    `json:"weight_bits,omitempty"`
				Shift      int    `json:"shift"`
			}
			out := struct {
				Name     string      `json:"name"`
				SHA256   string      `json:"sha256"`
				Weights  int         `json:"weights"`
				Layers   []layerInfo `json:"layers"`
				Training any         `json:"training,omitempty"`
			}{Name: m.Name, SHA256: f.SHA256, Weights: m.NumWeights(), Training: f.Training}
			for _, l := range m.Layers {
				out.Layers = append(out.Layers, layerInfo{string(l.Kind), l.In, l.Out, l.WeightBits, l.Shift})
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "model   %s\nsha256  %s\nweights %d\n", m.Name, f.SHA256, m.NumWeights())
			for i, l := range out.Layers {
				fmt.Fprintf(w, "layer %d %-6s %4d -> %-4d shift %d\n", i, l.Kind, l.In, l.Out, l.Shift)
			}
			if f.Training != nil {
				fmt.Fprintf(w, "test accuracy (recorded at training): float %.2f%%, fixed point %.2f%%\n", 100*f.Training.FloatAccuracy, 100*f.Training.FixedAccuracy)
			}
			return nil
		},
	}
	info.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	info.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(info)
	return cmd
}
