package main

import (
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/model"
)

func newModelCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Inspect model files and commit to them"}
	var path, saltFile string
	info := &cobra.Command{Use: "info", Short: "Print a model's architecture, size and checksum", Args: cobra.NoArgs}
	withResult(info, func(*cobra.Command, []string) (result, error) {
		f, err := model.LoadOrDefault(path)
		if err != nil {
			return nil, err
		}
		return f.Describe(), nil
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
		f, err := model.LoadOrDefault(path)
		if err != nil {
			return nil, err
		}
		return g.store().Commit(f, saltFile)
	})
	for _, c := range []*cobra.Command{info, commit} {
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	}
	commit.Flags().StringVar(&saltFile, "salt-file", "", "salt file (default: <data>/salts/<model>-<sha256>.salt, created if missing)")
	cmd.AddCommand(info, commit)
	return cmd
}
