package federated

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the result as `veil federated` does without --json.
func (r *LocalResult) WriteText(w io.Writer) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("training %s: %d owners, %d-of-%d decryption, aggregates of >= %d updates, %d rounds\n",
		r.TrainingID, len(r.Owners), r.Threshold, len(r.Owners), r.MinUpdates, len(r.Rounds))
	p("HE: %s (%d-bit, log2 Q = %.0f)\n", r.HEParameters, r.SecurityBits, r.LogQ)
	for i, o := range r.Owners {
		var top []string
		for d, n := range o.Classes {
			if n*4 > o.Samples/len(o.Classes) {
				top = append(top, fmt.Sprint(d))
			}
		}
		dp := ""
		if o.Epsilon > 0 && r.Config.DP != nil {
			dp = fmt.Sprintf(", DP ε = %.2f (δ = %g)", o.Epsilon, r.Config.DP.Delta)
		}
		root := o.MerkleRoot
		if len(root) > 16 {
			root = root[:16]
		}
		p("owner %d: %5d samples, mostly digits %s, dataset root %s…, share %5.2f%%%s\n",
			i, o.Samples, strings.Join(top, ","), root, float64(o.ShareBp)/100, dp)
	}
	p("per round (median of %d): %.2f s, HE overhead %.3f s, %.2f MB per party\n",
		len(r.Rounds), r.MedianRoundSeconds, r.MedianHEOverheadSeconds, r.MedianBytesPerParty/1e6)
	p("final model on the %d MNIST test images: float %.2f%%, fixed point %.2f%%\n", r.TestImages, 100*r.FloatAccuracy, 100*r.FixedAccuracy)
	if b := r.Baseline; b != nil {
		p("central baseline (%d epochs on the pooled shards): float %.2f%%, fixed point %.2f%% (%.0f s)\n",
			b.Epochs, 100*b.FloatAccuracy, 100*b.FixedAccuracy, b.Seconds)
	}
	p("shares: %s\n", r.ShareMethod)
	if len(r.LOOValidation) > 0 {
		var s []string
		for _, x := range r.LOOValidation {
			s = append(s, fmt.Sprintf("%.2f%%", 100*x))
		}
		p("validation accuracy with all owners %.2f%%, without each owner [%s]\n", 100*r.FullValidation, strings.Join(s, " "))
	}
	p("model written to %s (sha256 %s), commitment %s\n", r.ModelPath, r.ModelSHA256, r.Commitment)
	if r.SaltPath != "" {
		p("commitment salt in %s (secret: the server needs it to prove)\n", r.SaltPath)
	}
	if t := r.Trace; t != nil {
		pass := 0
		for _, c := range t.Checks {
			if c.OK {
				pass++
			}
		}
		p("trace of the registered model from the ledger: %d entries, %d checks, %d passed\n", t.Entries, len(t.Checks), pass)
	}
	p("ledger: %d entries in %s (node key %s); done in %.0f s\n", r.LedgerEntries, r.LedgerPath, r.NodeKey, r.Seconds)
	return nil
}

// OwnerReport is what `veil federated party` prints.
type OwnerReport struct {
	Owner       int               `json:"owner"`
	TrainingID  string            `json:"training_id"`
	ModelDigest string            `json:"model_digest"`
	Rounds      []OwnerRoundStats `json:"rounds"`
}

// Report returns the owner's report after Run.
func (o *Owner) Report() *OwnerReport {
	return &OwnerReport{Owner: o.cfg.Index, TrainingID: o.cfg.TrainingID, ModelDigest: fmt.Sprintf("%x", ModelDigest(o.model)), Rounds: o.Stats()}
}

// WriteText prints the owner's rounds.
func (r *OwnerReport) WriteText(w io.Writer) error {
	for _, s := range r.Rounds {
		fmt.Fprintf(w, "round %3d: trained %.2f s, HE %.3f s, sent %d B, received %d B\n", s.Round, s.TrainSeconds, s.HESeconds, s.BytesSent, s.BytesReceived)
	}
	_, err := fmt.Fprintf(w, "owner %d of %s: final model %s (decrypted here and checked against the ledger)\n", r.Owner, r.TrainingID, r.ModelDigest)
	return err
}

// CoordinatorReport is what `veil federated aggregate` prints.
type CoordinatorReport struct {
	TrainingID string       `json:"training_id"`
	Rounds     []RoundStats `json:"rounds"`
	Commitment string       `json:"model_commitment"`
	ModelPath  string       `json:"model_path"`
	SaltPath   string       `json:"salt_path"`
}

// WriteText prints the coordinator's summary.
func (r *CoordinatorReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "training %s: %d rounds; model written to %s, commitment %s, salt in %s\n", r.TrainingID, len(r.Rounds), r.ModelPath, r.Commitment, r.SaltPath)
	return err
}

// Line is a round in one line (the coordinator's view).
func (s RoundStats) Line() string {
	acc := ""
	if s.Accuracy > 0 {
		acc = fmt.Sprintf("test accuracy %.2f%%, ", 100*s.Accuracy)
	}
	return fmt.Sprintf("round %3d: %supdates %v, decrypted by %v (%d subsets agree), validation %.2f%%, %.2f s",
		s.Round, acc, s.Updates, s.Decryptors, s.Subsets, 100*s.Validation, s.Seconds)
}

// Line is a round in one line, with the owners' traffic and HE time.
func (r RoundReport) Line() string {
	var b int64
	for _, o := range r.Owners {
		b = max(b, o.BytesSent+o.BytesReceived)
	}
	return fmt.Sprintf("%s, HE overhead %.2f s, %.1f MB per party", r.RoundStats.Line(), r.HEOverheadSeconds, float64(b)/1e6)
}

// WriteText prints a trace: its owners, rounds and checks.
func (t *Trace) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "model %s (commitment %s) from training %s: %d owners, %d-of-%d decryption, aggregates of >= %d, %d rounds, %d ledger entries\n",
		t.ModelID, t.Commitment, t.TrainingID, len(t.Owners), t.Threshold, len(t.Owners), t.MinUpdates, len(t.Rounds), t.Entries)
	for i, o := range t.Owners {
		fmt.Fprintf(w, "  owner %d: key %s…, %d samples, dataset root %x, share %.2f%%\n", i, o.Key[:16], o.Samples, o.MerkleRoot, float64(o.ShareBp)/100)
	}
	for _, c := range t.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	return nil
}
