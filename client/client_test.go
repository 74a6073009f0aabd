package client_test

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/server"
)

// serve starts a real inference server for m on loopback and returns a
// connection to it.
func serve(t *testing.T, m *model.Model) *client.Conn {
	t.Helper()
	srv, err := server.New(server.Config{Models: []*model.Model{m}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- srv.Serve(ctx, lis, server.Options{ShutdownGrace: time.Second, Ready: func(string, string) { close(ready) }})
	}()
	<-ready
	conn, err := client.Dial(lis.Addr().String(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return conn
}

func smallModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := testmodels.Small()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkScores compares the decrypted scores of image 0 with the model's
// exact fixed-point scores.
func checkScores(t *testing.T, m *model.Model, img []uint8, scores []float64) {
	t.Helper()
	fixed, err := m.Forward(img)
	if err != nil {
		t.Fatal(err)
	}
	for r, y := range fixed {
		if d := math.Abs(scores[r] - float64(y)*m.Scale()); d > 0.5 {
			t.Fatalf("score %d: decrypted %.3f, fixed point %.3f", r, scores[r], float64(y)*m.Scale())
		}
	}
}

// The client keeps its session seed, key bundle and session under the data
// directory (0600 files) and reuses them while the server holds the
// session; a key never outlives its session.
func TestClassifierKeyCacheRoundTrip(t *testing.T) {
	m := smallModel(t)
	conn := serve(t, m)
	ctx := context.Background()
	dir := t.TempDir()
	test, err := dataset.MNISTTest()
	if err != nil {
		t.Fatal(err)
	}
	img := test.Images[0][:]

	first, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if first.KeysReused || first.SessionReused || first.KeyGen <= 0 || first.KeyBytes == 0 {
		t.Fatalf("fresh classifier: reused keys %v, session %v, keygen %v, %d key bytes", first.KeysReused, first.SessionReused, first.KeyGen, first.KeyBytes)
	}
	var files int
	err = filepath.Walk(filepath.Join(dir, "client"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		files++
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil || files < 3 {
		t.Fatalf("key directory: %d files, %v", files, err)
	}
	r, err := first.Classify(ctx, [][]uint8{img})
	if err != nil {
		t.Fatal(err)
	}
	checkScores(t, m, img, r.Scores[0])

	// A second run derives the secret key again from the seed and reloads
	// the session: nothing is
	// uploaded, and the reloaded key decrypts.
	second, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !second.KeysReused || !second.SessionReused || second.Upload != 0 || second.SessionID() != first.SessionID() || second.KeyBytes != first.KeyBytes {
		t.Fatalf("second classifier: reused keys %v, session %v (%s vs %s), upload %v", second.KeysReused, second.SessionReused, second.SessionID(), first.SessionID(), second.Upload)
	}
	if second.KeysDigest() != first.KeysDigest() {
		t.Fatal("reloaded keys have another digest")
	}
	r, err = second.Classify(ctx, [][]uint8{img})
	if err != nil {
		t.Fatal(err)
	}
	checkScores(t, m, img, r.Scores[0])

	// Once the server forgets the session, the next run makes fresh keys.
	if err := conn.CloseSession(ctx, second.SessionID()); err != nil {
		t.Fatal(err)
	}
	third, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if third.KeysReused || third.SessionReused || third.SessionID() == first.SessionID() || third.KeysDigest() == first.KeysDigest() {
		t.Fatalf("after the session closed: reused keys %v, session %v", third.KeysReused, third.SessionReused)
	}

	// A key serves at most MaxRequestsPerKey requests.
	one, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: t.TempDir(), MaxRequestsPerKey: 1})
	if err != nil {
		t.Fatal(err)
	}
	before := one.KeysDigest()
	for i := 0; i < 2; i++ {
		if r, err = one.Classify(ctx, [][]uint8{img}); err != nil {
			t.Fatal(err)
		}
	}
	checkScores(t, m, img, r.Scores[0])
	if one.KeysDigest() == before {
		t.Fatal("a key with MaxRequestsPerKey 1 served two requests")
	}
}

// A damaged session seed (what the secret key derives from) on disk is an
// error naming the file, never a panic or a silent fresh start that would
// hide the damage.
func TestClassifierRefusesDamagedSessionSeed(t *testing.T) {
	m := smallModel(t)
	conn := serve(t, m)
	ctx := context.Background()
	dir := t.TempDir()
	c, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var skPath string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "session.seed" {
			skPath = p
		}
		return err
	})
	if skPath == "" || c.SessionID() == "" {
		t.Fatal("no session seed written")
	}
	// The seed on disk is the one the session's bundle derives from.
	seed, _ := os.ReadFile(skPath)
	if s := c.SessionSeed(); string(s[:]) != string(seed) {
		t.Fatal("the seed on disk is not the session's")
	}
	if err := os.WriteFile(skPath, []byte("not a seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.NewClassifier(ctx, conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir}); err == nil || !strings.Contains(err.Error(), "session.seed") {
		t.Fatalf("damaged session seed: %v", err)
	}
}

// The server describes its parameters and slot layout; the client checks
// them itself. Each lie is refused.
func TestParametersForRefusesBadInfo(t *testing.T) {
	m := smallModel(t)
	conn := serve(t, m)
	good, err := conn.GetModel(context.Background(), m.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.ParametersFor(good); err != nil {
		t.Fatalf("the server's own info: %v", err)
	}
	weak := he.DefaultParametersLiteral
	weak.LogN = 12 // the same 180 bits of moduli on half the ring: not 128-bit
	weakLit, err := weak.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(*inferencev1.ModelInfo)
		want   string
	}{
		{"no CKKS parameters", func(i *inferencev1.ModelInfo) { i.Ckks = nil }, "lacks CKKS parameters"},
		{"no layout", func(i *inferencev1.ModelInfo) { i.Layout = nil }, "lacks CKKS parameters or layout"},
		{"garbled literal", func(i *inferencev1.ModelInfo) { i.Ckks.Literal = []byte("VPL1\x0d") }, "invalid CKKS parameters"},
		{"weak parameters", func(i *inferencev1.ModelInfo) { i.Ckks.Literal = weakLit }, "not 128-bit secure"},
		{"another fingerprint", func(i *inferencev1.ModelInfo) { i.Ckks.Fingerprint += "x" }, "compile to"},
		{"more blocks than slots", func(i *inferencev1.ModelInfo) { i.Layout.Blocks = 9 }, "slot layout"},
		{"pixels past the block", func(i *inferencev1.ModelInfo) { i.Layout.InputOffset = 900 }, "slot layout"},
		{"other block size", func(i *inferencev1.ModelInfo) { i.Layout.BlockSize = 2048 }, "slot layout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := proto.Clone(good).(*inferencev1.ModelInfo)
			c.change(info)
			_, _, err := client.ParametersFor(info)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
		})
	}
	info := proto.Clone(good).(*inferencev1.ModelInfo)
	info.Ckks.Literal = nil
	if _, _, err := client.ParametersFor(info); !errors.Is(err, he.ErrParameters) {
		t.Fatalf("empty literal: %v, want he.ErrParameters", err)
	}
}

// A server whose announced layout differs from what the registered
// architecture needs is refused before any key is made.
func TestNewClassifierRefusesLayoutOfAnotherArchitecture(t *testing.T) {
	m := smallModel(t)
	conn := serve(t, m)
	other := model.Architecture{{Kind: model.KindDense, Out: 64}, {Kind: model.KindSquare}, {Kind: model.KindDense, Out: 10}}
	dir := t.TempDir()
	_, err := client.NewClassifier(context.Background(), conn, client.ClassifierOptions{ModelID: m.Name, DataDir: dir, Architecture: other})
	if err == nil || !strings.Contains(err.Error(), "slot layout") {
		t.Fatalf("layout of another architecture: %v", err)
	}
	if keys, _ := filepath.Glob(filepath.Join(dir, "client", "*", "*", "session.seed")); len(keys) > 0 {
		t.Fatal("keys were made for a refused server")
	}
	if _, err := client.NewClassifier(context.Background(), conn, client.ClassifierOptions{ModelID: m.Name, DataDir: t.TempDir(), Architecture: model.ArchitectureOf(m)}); err != nil {
		t.Fatalf("the model's own architecture: %v", err)
	}
}
