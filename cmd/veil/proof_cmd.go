package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk"
)

// challengeSource is the --mnist-test / --challenges choice of prove and
// verify.
type challengeSource struct{ mnist, dir string }

func (c *challengeSource) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&c.mnist, "mnist-test", "", what+": MNIST test-set indices, e.g. 1,2,3 or 0-5")
	cmd.Flags().StringVar(&c.dir, "challenges", "", fmt.Sprintf("%s: a directory of %dx%d grey PNGs or %d-byte raw files, in name order", what, pixels.Side, pixels.Side, pixels.Count))
}

func (c *challengeSource) given() bool { return c.mnist != "" || c.dir != "" }

func (c *challengeSource) load() ([]pixels.Image, error) {
	switch {
	case c.mnist != "" && c.dir != "":
		return nil, usageError("give exactly one of --mnist-test and --challenges")
	case c.dir != "":
		return dataset.ReadChallenges(c.dir)
	}
	idx, err := dataset.ParseIndices(c.mnist)
	if err != nil {
		return nil, usageError("--mnist-test: %v", err)
	}
	test, err := dataset.MNISTTest()
	if err != nil {
		return nil, err
	}
	return test.Select(idx)
}

func newProveCmd(g *globalOptions) *cobra.Command {
	var path, saltFile, out, saveCh string
	var src challengeSource
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Prove the committed model's outputs on a batch of challenge images",
		Long: `Run the committed model on the challenge images and write a zk-SNARK
(Groth16) proof that the model behind the commitment (see veil model commit)
gives exactly these outputs. The batch size is the number of images; keys for
it are loaded from the data directory, or made by a ceremony of one.`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		if !src.given() {
			return nil, usageError("give exactly one of --mnist-test and --challenges")
		}
		imgs, err := src.load()
		if err != nil {
			return nil, err
		}
		return g.store().Prove(cmd.Context(), protocol.ProveOptions{ModelPath: path, SaltFile: saltFile, Images: imgs, Out: out, SaveChallenges: saveCh})
	})
	cmd.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	cmd.Flags().StringVar(&saltFile, "salt-file", "", "salt file (default: the model's salt under the data directory)")
	src.register(cmd, "challenge images")
	cmd.Flags().StringVarP(&out, "out", "o", "proof.veil", "proof file to write")
	cmd.Flags().StringVar(&saveCh, "save-challenges", "", "also write the challenge images as PNGs into this directory")
	return cmd
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	var vkPath, comHex string
	var src challengeSource
	cmd := &cobra.Command{
		Use:   "verify PROOF",
		Short: "Verify a proof file; print OK or why it is rejected",
		Long: `Verify a proof file against a verifying key (--vk, else the cached key for
the proof's circuit and batch size). Pass --commitment with the model owner's
published commitment, and the challenge images (--challenges or --mnist-test)
to check that the proof is about them; without them the proof's own claims
are used and only the proof's internal validity is checked.`,
		Args: cobra.ExactArgs(1),
	}
	withResult(cmd, func(_ *cobra.Command, args []string) (result, error) {
		o := zk.VerifyFileOptions{Proof: args[0], VK: vkPath, DataDir: g.dataDir}
		if comHex != "" {
			c, err := zk.ParseCommitment(comHex)
			if err != nil {
				return nil, usageError("--commitment: %v", err)
			}
			o.Commitment = &c
		}
		if src.given() {
			imgs, err := src.load()
			if err != nil {
				return nil, err
			}
			o.Images = imgs
		}
		return zk.VerifyFile(o)
	})
	cmd.Flags().StringVar(&vkPath, "vk", "", "verifying key file (default: the cached key for the proof's circuit)")
	cmd.Flags().StringVar(&comHex, "commitment", "", "expected model commitment (hex)")
	src.register(cmd, "the challenge images")
	return cmd
}

func newZKCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "zk", Short: "zk-SNARK circuit information and key export"}
	var path, out string
	var batch int
	exportVK := &cobra.Command{Use: "export-vk", Short: "Write the verifying key for the model and batch size", Args: cobra.NoArgs}
	withResult(exportVK, func(cmd *cobra.Command, _ []string) (result, error) {
		pk, err := g.store().CachedKeys(cmd.Context(), path, batch)
		if err != nil {
			return nil, err
		}
		return zk.WriteVerifyingKey(pk.VK, out)
	})
	sol := &cobra.Command{
		Use:   "export-solidity",
		Short: "Write gnark's Solidity Groth16 verifier contract for the key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pk, err := g.store().CachedKeys(cmd.Context(), path, batch)
			if err != nil {
				return err
			}
			return zk.ExportSolidityFile(pk.VK, out, cmd.OutOrStdout())
		},
	}
	info := &cobra.Command{Use: "info", Short: "Print the circuit's descriptor and size for the model and batch size", Args: cobra.NoArgs}
	withResult(info, func(*cobra.Command, []string) (result, error) {
		spec, err := protocol.SpecOf(path)
		if err != nil {
			return nil, err
		}
		return zk.Describe(spec, batch)
	})
	for _, c := range []*cobra.Command{exportVK, sol, info} {
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
		c.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
	}
	exportVK.Flags().StringVarP(&out, "out", "o", "verifying.key", "output file")
	sol.Flags().StringVarP(&out, "out", "o", "-", "output file (- for stdout)")
	cmd.AddCommand(exportVK, sol, info)
	return cmd
}
