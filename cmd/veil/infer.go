package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
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
		img, err := dataset.LoadDigit(s.path)
		return img, -1, err
	case s.mnistTest >= 0:
		test, err := dataset.MNISTTest()
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

func newInferCmd(g *globalOptions) *cobra.Command {
	var (
		src                                  imageSource
		modelPath, addr, tlsCA, modelID, led string
		verify                               bool
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
			mf, err := loadModel(modelPath)
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
			return nil, inferVerifiable(cmd.Context(), g, cmd.OutOrStdout(), addr, tlsCA, led, modelID, img, label, jsonOutput(cmd))
		default:
			conn, cl, err := g.dialClassifier(cmd.Context(), addr, tlsCA, modelID)
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
	cmd.Flags().StringVar(&led, "ledger", "", "with --verify: ledger node gRPC address (default: the server's)")
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
	cl, err := client.NewClassifier(ctx, conn, modelID, dir)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, cl, nil
}

// inferVerifiable runs the whole protocol for one image through a server
// started with --verifiable.
func inferVerifiable(ctx context.Context, g *globalOptions, w io.Writer, addr, tlsCA, ledgerAddr, modelID string, img pixels.Image, label int, asJSON bool) error {
	conn, cl, err := g.dialClassifier(ctx, addr, tlsCA, modelID)
	if err != nil {
		return err
	}
	defer conn.Close()
	if ledgerAddr == "" {
		ledgerAddr = addr
	}
	lc, err := query.Dial(ledgerAddr)
	if err != nil {
		return err
	}
	defer lc.Close()
	cdir, err := g.ensureDataDir("client")
	if err != nil {
		return err
	}
	key, err := client.LoadOrCreateIdentity(filepath.Join(cdir, "identity.key"))
	if err != nil {
		return err
	}
	mnist, err := dataset.FindMNISTDir()
	if err != nil {
		return err
	}
	pool, err := dataset.LoadTrain(mnist)
	if err != nil {
		return err
	}
	chain := ledger.DefaultChainID
	v := &client.Verifier{Classifier: cl, Ledger: lc, ChainID: chain, Key: key, Pool: pool}
	req, err := v.Classify(ctx, img)
	if err != nil {
		return err
	}
	receipt, reveal, err := v.Reveal(ctx, req)
	if err != nil {
		return err
	}
	out, err := v.Settle(ctx, req, 5*time.Minute)
	if err != nil {
		return err
	}
	res := struct {
		Class        int       `json:"class"`
		Scores       []float64 `json:"scores"`
		Label        *int      `json:"label,omitempty"`
		RequestID    string    `json:"request_id"`
		ReceiptIndex uint64    `json:"receipt_index"`
		RevealIndex  uint64    `json:"reveal_index"`
		ProofIndex   uint64    `json:"proof_index"`
		VerdictIndex uint64    `json:"verdict_index"`
		Accept       bool      `json:"accept"`
		Reason       string    `json:"reason"`
		LatencyMS    float64   `json:"latency_ms"`
		ProtocolMS   float64   `json:"protocol_overhead_ms"`
	}{Class: req.Class, Scores: req.Scores, RequestID: req.ID, ReceiptIndex: receipt, RevealIndex: reveal, ProofIndex: out.ProofIndex,
		VerdictIndex: out.VerdictIndex, Accept: out.Accept, Reason: out.Reason, ProtocolMS: req.ProtocolMS,
		LatencyMS: req.Result.EncryptMS + req.Result.RoundTripMS + req.Result.DecryptMS}
	if label >= 0 {
		res.Label = &label
	}
	if asJSON {
		return json.NewEncoder(w).Encode(res)
	}
	fmt.Fprintf(w, "class %d", res.Class)
	if label >= 0 {
		fmt.Fprintf(w, " (MNIST label %d)", label)
	}
	fmt.Fprintf(w, ", %.0f ms (protocol overhead %.2f ms)\n", res.LatencyMS, res.ProtocolMS)
	fmt.Fprintf(w, "request %s: receipt #%d, reveal #%d, proof #%d, verdict #%d\n", res.RequestID, receipt, reveal, out.ProofIndex, out.VerdictIndex)
	verdict := "ACCEPT"
	if !out.Accept {
		verdict = "REJECT"
	}
	fmt.Fprintf(w, "verdict %s: %s\n", verdict, out.Reason)
	if !out.Accept {
		return fmt.Errorf("the server's answer was rejected")
	}
	return nil
}
