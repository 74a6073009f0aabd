package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
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
	case s.path == "" && s.mnistTest < 0:
		return pixels.Image{}, -1, usageError("give --image FILE or --mnist-test INDEX")
	}
	img, label, err := dataset.LoadImage(s.path, s.mnistTest)
	if errors.Is(err, dataset.ErrIndex) {
		return img, label, usageError("--mnist-test: %v", err)
	}
	return img, label, err
}

func newInferCmd(g *globalOptions) *cobra.Command {
	var (
		src                             imageSource
		modelPath, addr, tlsCA, modelID string
		verify                          bool
		lf                              ledgerFlags
		vo                              protocol.VerifiedOptions
		maxPrice                        string
	)
	cmd := &cobra.Command{
		Use:   "infer",
		Short: "Classify one image under homomorphic encryption",
		Long: `Normalise an image like MNIST, encrypt it under CKKS, evaluate the network on
the ciphertext, decrypt and print the class and the 10 scores. Without
--server everything runs in this process (fresh keys each time).`,
		Args: cobra.NoArgs,
	}
	withResult(cmd, func(cmd *cobra.Command, _ []string) (result, error) {
		img, label, err := src.load()
		if err != nil {
			return nil, err
		}
		var res *client.Inference
		switch {
		case addr == "":
			mf, err := model.LoadOrDefault(modelPath)
			if err != nil {
				return nil, err
			}
			res, err = client.ClassifyLocally(cmd.Context(), mf.Model, img)
			if err != nil {
				return nil, err
			}
		case modelPath != "":
			return nil, usageError("--model is for local inference; with --server use --model-id")
		case verify:
			if maxPrice != "" {
				if vo.MaxPrice, err = ledger.ParseAmount(maxPrice); err != nil {
					return nil, usageError("--max-price: %v", err)
				}
			}
			if err := lf.Check(); err != nil {
				return nil, usageError("%v", err)
			}
			if vo.DataDir, err = g.store().Ensure(); err != nil {
				return nil, err
			}
			vo.Server, vo.ServerTLSCA, vo.ModelID, vo.Image = addr, tlsCA, modelID, img
			v, err := lf.Classify(cmd.Context(), vo, g.store().SelfKey)
			if v != nil && label >= 0 {
				v.Label = &label
			}
			return v, err
		default:
			dir, err := g.store().Ensure()
			if err != nil {
				return nil, err
			}
			conn, cl, err := client.DialClassifier(cmd.Context(), addr, client.Options{TLSCA: tlsCA}, client.ClassifierOptions{ModelID: modelID, DataDir: dir})
			if err != nil {
				return nil, err
			}
			defer conn.Close()
			if res, err = cl.ClassifyImage(cmd.Context(), img); err != nil {
				return nil, err
			}
		}
		if label >= 0 {
			res.Label = &label
		}
		return res, nil
	})
	src.register(cmd)
	cmd.Flags().StringVar(&modelPath, "model", "", "model file (default: the committed default model)")
	cmd.Flags().StringVar(&addr, "server", "", "address of a veil server (host:port); default: run in this process")
	cmd.Flags().StringVar(&tlsCA, "tls-ca", "", "CA certificate (PEM) to verify the server; enables TLS")
	cmd.Flags().StringVar(&modelID, "model-id", model.DefaultName, "model to use on the server")
	cmd.Flags().BoolVar(&verify, "verify", false, "with --server: hide challenge images beside yours, have the answer proven on the ledger and record a verdict")
	cmd.Flags().StringVar(&maxPrice, "max-price", "", "with --verify: the most to pay per image, in VEIL (the request pays the model's offer price; default: any)")
	cmd.Flags().BoolVar(&vo.Dispute, "dispute", true, "with --verify: when the challenge scores differ from the proof and the request paid, prove the fraud on the ledger (reveals the session's seed)")
	cmd.Flags().IntVar(&vo.MaxRequestsPerKey, "max-requests-per-key", 0, "with --verify: requests per CKKS session (a dispute reveals all of a session's images; default 256)")
	lf.register(cmd.Flags())
	return cmd
}
