package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A shrunken heorg-mnist run (one epoch on 3,000 images, one batch of 16)
// goes through every stage: 128-bit parameters, the encrypted classes
// agree with the fixed-point model's, sizes are measured, the outputs are
// written with the reference marked as published, and the second run
// reads the trained model from the cache.
func TestWorkloadHEOrgMNISTSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	dir := t.TempDir()
	o := WorkloadOptions{DataDir: dir, Epochs: 1, TrainImages: 3000, Reps: 1, KeygenReps: 1, Batches: []int{16}}
	r, err := RunWorkload(context.Background(), WorkloadHEOrgMNIST, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model.Architecture != "784-128-relu2-64-relu2-10" || r.Model.Cached || len(r.Model.Activations) != 2 {
		t.Fatalf("model %+v", r.Model)
	}
	if r.Parameters.SecurityBits != 128 || !strings.Contains(r.Parameters.Literal, "LogN=13") {
		t.Fatalf("parameters %+v", r.Parameters)
	}
	s := r.Single
	if s.KeysBytes <= 0 || s.InputBytes <= 0 || s.ResultBytes <= 0 || s.Server.Median <= 0 || s.EndToEnd.Median < s.Server.Median {
		t.Fatalf("single image %+v", s)
	}
	if len(r.Batches) != 1 || r.Batches[0].Ciphertexts != 2 || r.Batches[0].AgreeFixed < 15 || r.Batches[0].Accuracy < 0.6 {
		t.Fatalf("batch %+v", r.Batches)
	}
	files, err := WriteWorkloadOutputs(filepath.Join(dir, "out"), r)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("files %v", files)
	}
	md, _ := os.ReadFile(files[1])
	if !strings.Contains(string(md), "published, not re-run") || !strings.Contains(string(md), "server compute") {
		t.Fatalf("markdown:\n%s", md)
	}
	again, err := RunWorkload(context.Background(), WorkloadHEOrgMNIST, WorkloadOptions{DataDir: dir, Epochs: 1, TrainImages: 3000, Reps: 1, KeygenReps: 1, Batches: []int{8}})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Model.Cached || again.Model.SHA256 != r.Model.SHA256 {
		t.Fatalf("second run did not use the cached model: %+v", again.Model)
	}
	if _, err := RunWorkload(context.Background(), "nope", o); err == nil || !strings.Contains(err.Error(), "unknown workload") {
		t.Fatalf("unknown workload: %v", err)
	}
	if _, err := RunWorkload(context.Background(), WorkloadHEOrgMNIST, WorkloadOptions{DataDir: dir, Batches: []int{20000}}); err == nil || !strings.Contains(err.Error(), "test set has") {
		t.Fatalf("batch too large: %v", err)
	}
}
