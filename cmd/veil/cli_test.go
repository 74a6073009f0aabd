package main

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veil-project/veil/model"
)

// Bad input on the command line gives exactly one error line on stderr and
// a non-zero exit status, never a panic or a hang.
func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var pngBuf bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 40, 40))
	for i := 300; i < 900; i++ {
		img.Pix[i] = 255
	}
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	good := pngBuf.Bytes()
	// A PNG header claiming a huge size (checksum fixed, see dataset tests).
	huge := pngSized(good, 20000, 20000)
	zero := pngSized(good, 0, 0)
	f, err := model.Default()
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	if err := f.Encode(&mb); err != nil {
		t.Fatal(err)
	}
	badModel := strings.Replace(mb.String(), `"shift": 7`, `"shift": 6`, 1)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"non-image file", []string{"infer", "--image", write("notes.txt", []byte("hello, not an image\n"))}, 1, "not a PNG or JPEG"},
		{"truncated PNG", []string{"infer", "--image", write("cut.png", good[:len(good)/2])}, 1, "decode png"},
		{"0x0 image", []string{"infer", "--image", write("zero.png", zero)}, 1, "zero.png"},
		{"20000x20000 image", []string{"infer", "--image", write("huge.png", huge)}, 1, "larger than"},
		{"missing file", []string{"infer", "--image", filepath.Join(dir, "nope.png")}, 1, "no such file"},
		{"unknown flag", []string{"infer", "--frobnicate"}, 2, "unknown flag"},
		// The ledger a client verifies with is never the server's by default.
		{"verify without a ledger", []string{"infer", "--server", "127.0.0.1:1", "--verify", "--mnist-test", "0"}, 2, "--ledger: name the verifier ledger node"},
		{"verify without a trust anchor", []string{"infer", "--server", "127.0.0.1:1", "--verify", "--mnist-test", "0", "--ledger", "127.0.0.1:2"}, 2, "--ledger-key"},
		{"verify with a bad node key", []string{"verify-request", "--receipt", "1", "--ledger", "127.0.0.1:2", "--ledger-key", "abc"}, 2, "64 hex digits"},
		{"verify-request with two anchors", []string{"verify-request", "--receipt", "1", "--ledger", "127.0.0.1:2", "--ledger-key", strings.Repeat("0", 64), "--ledger-genesis", "g.json"}, 2, "--ledger-key"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"no image", []string{"infer"}, 2, "--image"},
		{"both image sources", []string{"infer", "--image", "a.png", "--mnist-test", "1"}, 2, "either"},
		{"MNIST index out of range", []string{"infer", "--mnist-test", "10000"}, 2, "out of range"},
		{"model with a bad checksum", []string{"model", "info", "--model", write("bad.json", []byte(badModel))}, 1, "checksum mismatch"},
		{"model that is not JSON", []string{"infer", "--mnist-test", "0", "--model", write("junk.json", []byte{0xff, 0, 1})}, 1, "not a model file"},
		{"eval limit", []string{"eval", "--limit", "0"}, 2, "--limit"},
		{"unknown workload", []string{"bench", "--workload", "cifar", "--data", dir}, 2, "unknown workload \"cifar\""},
		{"workload with --quick", []string{"bench", "--workload", "heorg-mnist", "--quick", "--data", dir}, 2, "--workload takes no --quick"},
		{"architecture starting with an activation", []string{"train", "--arch", "relu2,10"}, 2, "first layer must be dense"},
		{"ReLU approximation of degree 7", []string{"train", "--arch", "128,relu7,10"}, 2, "degree from 1 to 3"},
		{"setup check with a bad hash", []string{"setup", "check", "--ledger", "127.0.0.1:1", "--hash", "xyz"}, 2, "64 hex digits"},
		{"setup check without a ledger", []string{"setup", "check", "--hash", strings.Repeat("ab", 32)}, 2, "--ledger: name the verifier ledger node"},
		{"setup audit without a ledger", []string{"setup", "audit"}, 2, "--ledger: name the verifier ledger node"},
		{"setup check without an anchor", []string{"setup", "check", "--ledger", "127.0.0.1:1", "--hash", strings.Repeat("ab", 32)}, 2, "give --ledger-key"},
		{"infer with a bad contributor key", []string{"infer", "--server", "127.0.0.1:1", "--mnist-test", "0", "--verify", "--ledger", "127.0.0.1:1", "--ledger-key", strings.Repeat("ab", 32), "--trust-contributor", "xyz"}, 2, "--trust-contributor"},
		{"setup contribute with neither a directory nor a ledger", []string{"setup", "contribute"}, 2, "--dir is required"},
		{"demo with a space before a boolean's value", []string{"demo", "--ceremony", "false"}, 2, "--ceremony=false"},
		{"demo with an argument", []string{"demo", "now"}, 2, `demo takes no arguments, got "now"`},
		{"demo with an unknown model", []string{"demo", "--model", "mnist-64", "--dir", dir}, 2, `--model: no committed model "mnist-64"`},
		{"server unreachable", []string{"infer", "--mnist-test", "0", "--server", "127.0.0.1:1", "--data", dir}, 1, "connect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(c.args, &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "veil: error: ") {
				t.Fatalf("stderr is not one error line: %q", stderr.String())
			}
			if !strings.Contains(lines[0], c.want) {
				t.Fatalf("error %q does not mention %q", lines[0], c.want)
			}
		})
	}
}

// pngSized rewrites a PNG header's size and its checksum.
func pngSized(b []byte, w, h uint32) []byte {
	b = append([]byte(nil), b...)
	put := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	put(16, w)
	put(20, h)
	put(29, crc32IEEE(b[12:29]))
	return b
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// --json prints the same result as the text, as one JSON document.
func TestJSONOutput(t *testing.T) {
	var info struct {
		Name    string `json:"name"`
		Weights int    `json:"weights"`
		Layers  []struct {
			Kind string `json:"kind"`
		} `json:"layers"`
	}
	jsonOf(t, &info, "model", "info", "--json")
	if info.Name != model.DefaultName || info.Weights != 30634 || len(info.Layers) != 4 || info.Layers[2].Kind != "square" {
		t.Fatalf("model info --json: %+v", info)
	}
	var ev struct {
		N                 int     `json:"n"`
		PlaintextAccuracy float64 `json:"plaintext_accuracy"`
		Encrypted         bool    `json:"encrypted"`
	}
	jsonOf(t, &ev, "eval", "--limit", "20", "--json")
	if ev.N != 20 || ev.Encrypted || ev.PlaintextAccuracy < 0.9 {
		t.Fatalf("eval --json: %+v", ev)
	}
	text, err := runCLI(t, "eval", "--limit", "20")
	if err != nil || !strings.Contains(text, "model mnist-sq-32x128, 20 MNIST test images") {
		t.Fatalf("eval text: %v\n%s", err, text)
	}
}

func jsonOf(t *testing.T, v any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("%v: not JSON: %v\n%s", args, err, stdout.String())
	}
}
