package bench

import (
	"fmt"
	"slices"

	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/pixels"
)

// Suite is the fixed definition of a benchmark run. It is recorded in
// results.json, so a result says exactly what was measured.
type Suite struct {
	Name      string         `json:"name"` // "full" or "quick"
	HE        HESuite        `json:"he"`
	Plaintext PlaintextSuite `json:"plaintext"`
	GRPC      GRPCSuite      `json:"grpc"`
	ZK        ZKSuite        `json:"zk"`
	Ledger    LedgerSuite    `json:"ledger"`
	Peer      PeerSuite      `json:"peer"`
}

// HESuite is the CKKS grid: every combination of ring degree, hidden size,
// images per ciphertext and workers is measured. All other parameters are
// he.DefaultParameters' (LogQ [60, 60], LogP [60], blocks of 1024 slots,
// flooding σ = 2^38).
type HESuite struct {
	LogN    []int `json:"log_n"`
	Hidden  []int `json:"hidden"`
	Images  []int `json:"images_per_ciphertext"`
	Workers []int `json:"workers"`
	// Reps timed repetitions per grid point (after one untimed warm-up) of
	// encryption, evaluation and decryption.
	Reps int `json:"reps"`
	// KeygenReps timed key generations per (LogN, hidden).
	KeygenReps int `json:"keygen_reps"`
}

// DefaultHidden is the hidden size of the default model's first matrix
// (784-32-128-sq-10 folds into a 128×784 matrix): that grid point uses
// the trained default model, the others random 8-bit weights of the same
// layer kinds (latency does not depend on the weights' values).
const DefaultHidden = 128

// modelName names the model measured at a hidden size.
func (s HESuite) modelName(hidden int) string {
	if hidden == DefaultHidden {
		return "default"
	}
	return fmt.Sprintf("random-%d-%d-sq-10", pixels.Count, hidden)
}

// PlaintextSuite measures the same model in the clear and the accuracy of
// encrypted classification.
type PlaintextSuite struct {
	// Reps samples of the per-image Forward time, each the mean over
	// ImagesPerSample images.
	Reps            int `json:"reps"`
	ImagesPerSample int `json:"images_per_sample"`
	// EncryptedImages MNIST test images classified under CKKS with the
	// default parameters (packed 8 per ciphertext).
	EncryptedImages int `json:"encrypted_images"`
}

// GRPCSuite measures the inference service on loopback with the default
// model and parameters.
type GRPCSuite struct {
	Reps int `json:"reps"` // Infer round trips from one client
	// Clients are the concurrency levels of the throughput test; each runs
	// for SecondsPerLevel.
	Clients         []int   `json:"clients"`
	SecondsPerLevel float64 `json:"seconds_per_level"`
}

func (GRPCSuite) model() string { return "default" }

// ZKSuite measures Groth16 proofs of challenge batches.
type ZKSuite struct {
	// Model is "default" (the default model's circuit) or "tiny" (784-4-sq-10
	// random weights: a small circuit for smoke tests).
	Model      string `json:"model"`
	Batches    []int  `json:"batches"`
	ProveReps  int    `json:"prove_reps"`
	VerifyReps int    `json:"verify_reps"`
}

// LedgerSuite measures the embedded ledger: Requests requests, each
// receipted, revealed and proven (with the real proof of the smallest zk
// batch), submitted by Submitters concurrent clients.
type LedgerSuite struct {
	Requests   int `json:"requests"`
	Submitters int `json:"submitters"`
}

// PeerSuite configures the side-by-side peer run (only with --peer).
type PeerSuite struct {
	Reps int `json:"reps"`
}

// DefaultSuite is the full suite: about 5 minutes on 2 cores, 2.5 when the
// Groth16 keys are cached in the data directory (the three setups take
// about 50 s each).
func DefaultSuite() Suite {
	return Suite{
		Name: "full",
		HE: HESuite{
			LogN: []int{13, 14}, Hidden: []int{64, 128}, Images: []int{1, 4, 8}, Workers: []int{1, 2},
			Reps: 20, KeygenReps: 3,
		},
		Plaintext: PlaintextSuite{Reps: 30, ImagesPerSample: 100, EncryptedImages: 64},
		GRPC:      GRPCSuite{Reps: 20, Clients: []int{1, 2, 4, 8}, SecondsPerLevel: 5},
		ZK:        ZKSuite{Model: "default", Batches: []int{1, 3, 7}, ProveReps: 3, VerifyReps: 30},
		Ledger:    LedgerSuite{Requests: 300, Submitters: 16},
		Peer:      PeerSuite{Reps: 12},
	}
}

// QuickSuite is the CI smoke suite: under a minute on 2 cores. It keeps
// one point of each axis that matters for correctness and uses a tiny
// circuit for proofs.
func QuickSuite() Suite {
	return Suite{
		Name: "quick",
		HE: HESuite{
			LogN: []int{13}, Hidden: []int{128}, Images: []int{1, 8}, Workers: []int{1, 2},
			Reps: 4, KeygenReps: 1,
		},
		Plaintext: PlaintextSuite{Reps: 10, ImagesPerSample: 50, EncryptedImages: 8},
		GRPC:      GRPCSuite{Reps: 4, Clients: []int{1, 2}, SecondsPerLevel: 1.5},
		ZK:        ZKSuite{Model: "tiny", Batches: []int{1}, ProveReps: 2, VerifyReps: 10},
		Ledger:    LedgerSuite{Requests: 40, Submitters: 8},
		Peer:      PeerSuite{Reps: 3},
	}
}

// Check rejects suites the code cannot run.
func (s Suite) Check() error {
	h := s.HE
	if len(h.LogN) == 0 || len(h.Hidden) == 0 || len(h.Images) == 0 || len(h.Workers) == 0 || h.Reps < 1 || h.KeygenReps < 1 {
		return fmt.Errorf("suite %s: empty HE grid or no repetitions", s.Name)
	}
	for _, logN := range h.LogN {
		p := he.DefaultParametersLiteral
		p.LogN = logN
		if err := p.Validate(); err != nil {
			return fmt.Errorf("suite %s: LogN %d: %w", s.Name, logN, err)
		}
		for _, img := range h.Images {
			if img < 1 || img > p.Blocks() {
				return fmt.Errorf("suite %s: %d images do not fit the %d blocks of LogN %d", s.Name, img, p.Blocks(), logN)
			}
		}
	}
	for _, hid := range h.Hidden {
		if hid < 10 || nextPow2(hid)+pixels.Count > he.DefaultParametersLiteral.BlockSize {
			return fmt.Errorf("suite %s: hidden size %d out of range [10, %d]", s.Name, hid, he.DefaultParametersLiteral.BlockSize-pixels.Count)
		}
	}
	// The default point anchors the accuracy check, the gRPC stage, the
	// ratios and the peer comparison.
	if !slices.Contains(h.LogN, he.DefaultParametersLiteral.LogN) || !slices.Contains(h.Hidden, DefaultHidden) ||
		!slices.Contains(h.Workers, he.DefaultEvaluationSettings.Workers) || !slices.Contains(h.Images, 1) {
		return fmt.Errorf("suite %s: the HE grid must contain the default point (LogN %d, hidden %d, workers %d, 1 image)",
			s.Name, he.DefaultParametersLiteral.LogN, DefaultHidden, he.DefaultEvaluationSettings.Workers)
	}
	if s.Plaintext.Reps < 1 || s.Plaintext.ImagesPerSample < 1 || s.Plaintext.EncryptedImages < 1 {
		return fmt.Errorf("suite %s: empty plaintext stage", s.Name)
	}
	if s.GRPC.Reps < 1 || len(s.GRPC.Clients) == 0 || s.GRPC.SecondsPerLevel <= 0 {
		return fmt.Errorf("suite %s: empty gRPC stage", s.Name)
	}
	if (s.ZK.Model != "default" && s.ZK.Model != "tiny") || len(s.ZK.Batches) == 0 || s.ZK.ProveReps < 1 || s.ZK.VerifyReps < 1 {
		return fmt.Errorf("suite %s: zk model %q, batches %v", s.Name, s.ZK.Model, s.ZK.Batches)
	}
	for _, b := range s.ZK.Batches {
		if b < 1 || b > 64 {
			return fmt.Errorf("suite %s: zk batch %d out of range [1, 64]", s.Name, b)
		}
	}
	if s.Ledger.Requests < 1 || s.Ledger.Submitters < 1 {
		return fmt.Errorf("suite %s: empty ledger stage", s.Name)
	}
	if s.Peer.Reps < 1 {
		return fmt.Errorf("suite %s: peer reps %d", s.Name, s.Peer.Reps)
	}
	return nil
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
