package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consensys/gnark/logger"
	"github.com/spf13/cobra"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// saltPath is the default salt file of a model: one per model checksum,
// under the data directory, readable by the owner only.
func (g *globalOptions) saltPath(f *model.File) (string, error) {
	d, err := g.ensureDataDir("salts")
	if err != nil {
		return "", err
	}
	return filepath.Join(d, f.Model.Name+"-"+f.SHA256[:16]+".salt"), nil
}

func (g *globalOptions) loadSalt(f *model.File, path string, create bool) (zk.Salt, string, error) {
	if path == "" {
		p, err := g.saltPath(f)
		if err != nil {
			return zk.Salt{}, "", err
		}
		path = p
	}
	if !create {
		s, err := zk.LoadSalt(path)
		return s, path, err
	}
	s, created, err := zk.LoadOrCreateSalt(path)
	if err == nil && created && !g.quiet {
		fmt.Fprintf(os.Stderr, "veil: created a new secret salt in %s (keep it: the commitment cannot be proven without it)\n", path)
	}
	return s, path, err
}

// withModelCommit adds `veil model commit` to the model command.
func withModelCommit(g *globalOptions, modelCmd *cobra.Command) *cobra.Command {
	var path, saltFile string
	cmd := &cobra.Command{
		Use:   "commit",
		Short: "Print the model's Poseidon2 commitment (creating its secret salt if needed)",
		Long: `Print the commitment to a model: a Poseidon2 hash over BN254 of the
model's architecture descriptor, a secret random salt and its packed weights.
Publish the commitment; keep the salt (default: a 0600 file under the data
directory) and the weights private. Proofs show that the committed model
produced given outputs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			quietGnark()
			f, err := loadModel(path)
			if err != nil {
				return err
			}
			salt, sp, err := g.loadSalt(f, saltFile, true)
			if err != nil {
				return err
			}
			c, err := zk.Commit(f.Model, salt)
			if err != nil {
				return err
			}
			id, err := zk.ModelIDOf(f.Model)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "commitment %s\nmodel      %s (sha256 %s)\ncircuit    %s\nsalt file  %s\n", c, f.Model.Name, f.SHA256, id, sp)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	cmd.Flags().StringVar(&saltFile, "salt-file", "", "salt file (default: <data>/salts/<model>-<sha256>.salt, created if missing)")
	modelCmd.AddCommand(cmd)
	return modelCmd
}

// quietGnark silences gnark's own logging (compile, solver, prover and
// verifier debug lines) for the zk commands: they have their own progress
// output.
func quietGnark() { logger.Disable() }

// parseIndices parses "1,2,3" or "0-9".
func parseIndices(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if lo, hi, ok := strings.Cut(part, "-"); ok {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a > b || b-a > 4096 {
				return nil, fmt.Errorf("bad range %q", part)
			}
			for i := a; i <= b; i++ {
				out = append(out, i)
			}
			continue
		}
		i, err := strconv.Atoi(part)
		if err != nil {
			return nil, fmt.Errorf("bad index %q", part)
		}
		out = append(out, i)
	}
	return out, nil
}

func mnistTestImages(list string) ([]pixels.Image, error) {
	idx, err := parseIndices(list)
	if err != nil {
		return nil, usageError("--mnist-test: %v", err)
	}
	dir, err := dataset.FindMNISTDir()
	if err != nil {
		return nil, err
	}
	set, err := dataset.LoadTest(dir)
	if err != nil {
		return nil, err
	}
	imgs := make([]pixels.Image, len(idx))
	for k, i := range idx {
		if imgs[k], _, err = set.At(i); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// readChallenges reads a challenge directory: files in name order, each a
// 28×28 grey PNG or 784 raw bytes. Pixels are taken exactly, never
// resampled: the proof is about these exact integers.
func readChallenges(dir string) ([]pixels.Image, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("challenges: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("challenges: no files in %s", dir)
	}
	var out []pixels.Image
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("challenges: %w", err)
		}
		var img pixels.Image
		if len(b) == pixels.Count && !bytes.HasPrefix(b, []byte("\x89PNG")) {
			copy(img[:], b)
		} else {
			p, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("challenges: %s: neither 784 raw bytes nor a PNG: %v", n, err)
			}
			if p.Bounds().Dx() != pixels.Side || p.Bounds().Dy() != pixels.Side {
				return nil, fmt.Errorf("challenges: %s is %dx%d, want 28x28", n, p.Bounds().Dx(), p.Bounds().Dy())
			}
			r := p.Bounds()
			for y := 0; y < pixels.Side; y++ {
				for x := 0; x < pixels.Side; x++ {
					img[y*pixels.Side+x] = color.GrayModel.Convert(p.At(r.Min.X+x, r.Min.Y+y)).(color.Gray).Y
				}
			}
		}
		out = append(out, img)
	}
	return out, nil
}

func writeChallenges(dir string, imgs []pixels.Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, img := range imgs {
		g := image.NewGray(image.Rect(0, 0, pixels.Side, pixels.Side))
		copy(g.Pix, img[:])
		var b bytes.Buffer
		if err := png.Encode(&b, g); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("challenge-%03d.png", i)), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func newProveCmd(g *globalOptions) *cobra.Command {
	var path, saltFile, mnist, chDir, out, saveCh string
	cmd := &cobra.Command{
		Use:   "prove",
		Short: "Prove the committed model's outputs on a batch of challenge images",
		Long: `Run the committed model on the challenge images and write a zk-SNARK
(Groth16) proof that the model behind the commitment (see veil model commit)
gives exactly these outputs. The batch size is the number of images; keys for
it are loaded from the data directory, or made by a ceremony of one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			quietGnark()
			if (mnist == "") == (chDir == "") {
				return usageError("give exactly one of --mnist-test and --challenges")
			}
			var imgs []pixels.Image
			var err error
			if mnist != "" {
				imgs, err = mnistTestImages(mnist)
			} else {
				imgs, err = readChallenges(chDir)
			}
			if err != nil {
				return err
			}
			f, err := loadModel(path)
			if err != nil {
				return err
			}
			salt, _, err := g.loadSalt(f, saltFile, true)
			if err != nil {
				return err
			}
			pk, err := g.keys(cmd.Context(), f.Model, len(imgs), true)
			if err != nil {
				return err
			}
			prover, err := zk.NewProver(f.Model, salt, pk)
			if err != nil {
				return err
			}
			start := time.Now()
			proof, err := prover.Prove(cmd.Context(), imgs)
			if err != nil {
				return err
			}
			el := time.Since(start)
			b, err := proof.MarshalBinary()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return fmt.Errorf("write proof: %w", err)
			}
			if saveCh != "" {
				if err := writeChallenges(saveCh, imgs); err != nil {
					return fmt.Errorf("write challenges: %w", err)
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "proof      %s (%d bytes, Groth16 part %d bytes), proved in %s\n", out, len(b), len(proof.Groth16), el.Round(time.Millisecond))
			fmt.Fprintf(w, "commitment %s\ndigest     %s\n", proof.Commitment, proof.Digest)
			for i, o := range proof.Outputs {
				fmt.Fprintf(w, "challenge %d: class %d, scores %v\n", i, model.Class(o), o)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
	cmd.Flags().StringVar(&saltFile, "salt-file", "", "salt file (default: the model's salt under the data directory)")
	cmd.Flags().StringVar(&mnist, "mnist-test", "", "challenge images: MNIST test-set indices, e.g. 1,2,3 or 0-5")
	cmd.Flags().StringVar(&chDir, "challenges", "", "challenge images: a directory of 28x28 grey PNGs or 784-byte raw files, in name order")
	cmd.Flags().StringVarP(&out, "out", "o", "proof.veil", "proof file to write")
	cmd.Flags().StringVar(&saveCh, "save-challenges", "", "also write the challenge images as PNGs into this directory")
	return cmd
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	var vkPath, comHex, mnist, chDir string
	cmd := &cobra.Command{
		Use:   "verify PROOF",
		Short: "Verify a proof file; print OK or why it is rejected",
		Long: `Verify a proof file against a verifying key (--vk, else the cached key for
the proof's circuit and batch size). Pass --commitment with the model owner's
published commitment, and the challenge images (--challenges or --mnist-test)
to check that the proof is about them; without them the proof's own claims
are used and only the proof's internal validity is checked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			quietGnark()
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read proof: %w", err)
			}
			p, err := zk.ParseProof(data)
			if err != nil {
				return fmt.Errorf("proof rejected: %w", err)
			}
			if vkPath == "" {
				vkPath = filepath.Join(zk.KeyDir(g.dataDir, p.ModelID, len(p.Outputs)), "verifying.key")
			}
			vk, err := zk.LoadVerifyingKey(vkPath)
			if err != nil {
				return err
			}
			st := p.Statement
			var notes []string
			if comHex != "" {
				if st.Commitment, err = zk.ParseCommitment(comHex); err != nil {
					return usageError("--commitment: %v", err)
				}
			} else {
				notes = append(notes, "commitment taken from the proof file (pass --commitment to check it is the published one)")
			}
			if mnist != "" || chDir != "" {
				var imgs []pixels.Image
				if mnist != "" {
					imgs, err = mnistTestImages(mnist)
				} else {
					imgs, err = readChallenges(chDir)
				}
				if err != nil {
					return err
				}
				st.Digest = zk.ChallengeDigest(imgs)
			} else {
				notes = append(notes, "challenge digest taken from the proof file (pass the challenge images to check it)")
			}
			if err := zk.Verify(vk, st, data); err != nil {
				return fmt.Errorf("proof rejected: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "OK: commitment %s, %d challenges, digest %s\n", st.Commitment, len(st.Outputs), st.Digest)
			for _, n := range notes {
				fmt.Fprintf(w, "note: %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&vkPath, "vk", "", "verifying key file (default: the cached key for the proof's circuit)")
	cmd.Flags().StringVar(&comHex, "commitment", "", "expected model commitment (hex)")
	cmd.Flags().StringVar(&mnist, "mnist-test", "", "the challenge images as MNIST test-set indices")
	cmd.Flags().StringVar(&chDir, "challenges", "", "the challenge images as a directory")
	return cmd
}

// specOfModel loads the model file at path (the default model when empty)
// and returns its circuit descriptor.
func specOfModel(path string) (*circuits.Spec, error) {
	f, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return circuits.SpecOf(f.Model)
}

// cachedKeys loads the model file at path (the default model when empty)
// and its cached keys for batch, without running a setup.
func (g *globalOptions) cachedKeys(ctx context.Context, path string, batch int) (*zk.ProvingKey, error) {
	f, err := loadModel(path)
	if err != nil {
		return nil, err
	}
	return g.keys(ctx, f.Model, batch, false)
}

func newZKCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "zk", Short: "zk-SNARK circuit information and key export"}
	var path, out string
	var batch int
	exportVK := &cobra.Command{
		Use:   "export-vk",
		Short: "Write the verifying key for the model and batch size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pk, err := g.cachedKeys(cmd.Context(), path, batch)
			if err != nil {
				return err
			}
			b, err := pk.VK.MarshalBinary()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			h := pk.VK.Hash()
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes), sha256 %x\n", out, len(b), h)
			return nil
		},
	}
	sol := &cobra.Command{
		Use:   "export-solidity",
		Short: "Write gnark's Solidity Groth16 verifier contract for the key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pk, err := g.cachedKeys(cmd.Context(), path, batch)
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if out != "-" {
				fh, err := os.Create(out)
				if err != nil {
					return err
				}
				defer fh.Close()
				w = fh
			}
			return pk.VK.ExportSolidity(w)
		},
	}
	info := &cobra.Command{
		Use:   "info",
		Short: "Print the circuit's descriptor and size for the model and batch size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := specOfModel(path)
			if err != nil {
				return err
			}
			r, err := zk.Compile(spec, batch)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "circuit %x (version %d), batch %d: %d R1CS constraints, domain %d\n", spec.ID(), zk.CircuitVersion, batch, r.GetNbConstraints(), zk.Domain(r))
			for i, l := range spec.Layers {
				fmt.Fprintf(w, "layer %d %-6s %4d -> %-4d shift %-2d accumulator in [%d, %d]\n", i, l.Kind, l.In, l.Out, l.Shift, l.AccLo, l.AccHi)
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{exportVK, sol, info} {
		c.Flags().StringVar(&path, "model", "", "model file (default: the committed default model)")
		c.Flags().IntVar(&batch, "batch", 3, "challenges per proof")
	}
	exportVK.Flags().StringVarP(&out, "out", "o", "verifying.key", "output file")
	sol.Flags().StringVarP(&out, "out", "o", "-", "output file (- for stdout)")
	cmd.AddCommand(exportVK, sol, info)
	return cmd
}
