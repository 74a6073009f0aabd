package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// imageSource is the --image / --mnist-test choice shared by commands.
type imageSource struct {
	path      string
	mnistTest int
}

func (s *imageSource) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.path, "image", "", "PNG or JPEG image of a digit (any size, colour or grey)")
	cmd.Flags().IntVar(&s.mnistTest, "mnist-test", -1, "index of an MNIST test image (0..9999) instead of --image")
}

// load returns the normalised image and, for MNIST, its label (else -1).
func (s *imageSource) load() (pixels.Image, int, error) {
	switch {
	case s.path != "" && s.mnistTest >= 0:
		return pixels.Image{}, -1, usageError("give either --image or --mnist-test, not both")
	case s.path != "":
		f, err := os.Open(s.path)
		if err != nil {
			return pixels.Image{}, -1, fmt.Errorf("open image: %w", err)
		}
		defer f.Close()
		img, err := dataset.DecodeDigit(f)
		if err != nil {
			return pixels.Image{}, -1, fmt.Errorf("%s: %w", s.path, err)
		}
		return img, -1, nil
	case s.mnistTest >= 0:
		dir, err := dataset.FindMNISTDir()
		if err != nil {
			return pixels.Image{}, -1, err
		}
		test, err := dataset.LoadTest(dir)
		if err != nil {
			return pixels.Image{}, -1, err
		}
		img, label, err := test.At(s.mnistTest)
		if err != nil {
			return pixels.Image{}, -1, usageError("--mnist-test: %v", err)
		}
		return img, int(label), nil
	default:
		return pixels.Image{}, -1, usageError("give --image FILE or --mnist-test INDEX")
	}
}

// inferResult is the JSON printed by `veil infer --json`.
type inferResult = client.Inference

func newInferCmd(g *globalOptions) *cobra.Command {
	var (
		src       imageSource
		asJSON    bool
		modelPath string
		addr      string
		tlsCA     string
		modelID   string
		verify    bool
		lf        ledgerFlags
	)
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Classify one image under homomorphic encryption",
		Long: `Normalise an image like MNIST, encrypt it under CKKS, evaluate the network on
the ciphertext, decrypt and print the class and the 10 scores. Without
--server everything runs in this process (fresh keys each time).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			img, label, err := src.load()
			if err != nil {
				return err
			}
			var res *inferResult
			if addr != "" {
				if modelPath != "" {
					return usageError("--model is for local inference; with --server use --model-id")
				}
				if verify {
					return inferVerifiable(cmd.Context(), g, cmd.OutOrStdout(), verifiableOptions{
						server: addr, tlsCA: tlsCA, modelID: modelID, ledger: lf, img: img, label: label, asJSON: asJSON})
				}
				res, err = inferRemote(cmd.Context(), g, addr, tlsCA, modelID, img)
			} else {
				mf, lerr := loadModel(modelPath)
				if lerr != nil {
					return lerr
				}
				res, err = inferLocal(cmd.Context(), mf.Model, img)
			}
			if err != nil {
				return err
			}
			if label >= 0 {
				res.Label = &label
			}
			return printInfer(cmd.OutOrStdout(), res, asJSON)
		},
	}
	src.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().StringVar(&modelPath, "model", "", "model file (default: the committed default model)")
	cmd.Flags().StringVar(&addr, "server", "", "address of a veil server (host:port); default: run in this process")
	cmd.Flags().StringVar(&tlsCA, "tls-ca", "", "CA certificate (PEM) to verify the server; enables TLS")
	cmd.Flags().StringVar(&modelID, "model-id", model.DefaultName, "model to use on the server")
	cmd.Flags().BoolVar(&verify, "verify", false, "with --server: hide challenge images beside yours, have the answer proven on the ledger and record a verdict")
	lf.register(cmd.Flags())
	return cmd
}

// dialClassifier connects to a server and prepares private classification
// with one of its models, reusing the keys and the session kept under the
// data directory. The caller closes the connection.
func (g *globalOptions) dialClassifier(ctx context.Context, addr, tlsCA, modelID string) (*client.Conn, *client.Classifier, error) {
	conn, err := client.Dial(addr, client.Options{TLSCA: tlsCA})
	if err != nil {
		return nil, nil, err
	}
	dir, err := g.ensureDataDir()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	cl, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: modelID, DataDir: dir})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, cl, nil
}

// inferRemote classifies through a server, reusing the keys and the session
// kept under the data directory.
func inferRemote(ctx context.Context, g *globalOptions, addr, tlsCA, modelID string, img pixels.Image) (*inferResult, error) {
	conn, cl, err := g.dialClassifier(ctx, addr, tlsCA, modelID)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return cl.ClassifyImage(ctx, img)
}

// inferLocal runs the whole client and server path in this process, through
// the same wire encodings a remote server would see.
func inferLocal(ctx context.Context, m *model.Model, img pixels.Image) (*inferResult, error) {
	return client.ClassifyLocally(ctx, m, img)
}

func printInfer(w io.Writer, r *inferResult, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	fmt.Fprintf(w, "class %d", r.Class)
	if r.Label != nil {
		fmt.Fprintf(w, " (MNIST label %d)", *r.Label)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "scores")
	for i, s := range r.Scores {
		fmt.Fprintf(w, " %d:%.2f", i, s)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "latency encrypt %.1f ms, evaluate %.1f ms, decrypt %.1f ms", r.LatencyMS.Encrypt, r.LatencyMS.Evaluate, r.LatencyMS.Decrypt)
	if r.Server != "" {
		fmt.Fprintf(w, ", network and queue %.1f ms", r.LatencyMS.Network)
	}
	fmt.Fprintf(w, ", total %.1f ms\n", r.LatencyMS.Total)
	fmt.Fprintf(w, "ciphertexts in %d bytes, out %d bytes; %d rotation keys, key bundle %.1f MB",
		r.CiphertextBytes.Input, r.CiphertextBytes.Output, r.Keys.GaloisKeys, float64(r.Keys.Bytes)/1e6)
	if r.Keys.Reused {
		fmt.Fprint(w, " (session reused: nothing uploaded)")
	} else if r.LatencyMS.KeyGen > 0 {
		fmt.Fprintf(w, " made in %.0f ms", r.LatencyMS.KeyGen)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "image in block %d of %d; %s\n", r.Block, r.Blocks, r.Parameters)
	if r.Server != "" {
		fmt.Fprintf(w, "server %s\n", r.Server)
	}
	return nil
}
