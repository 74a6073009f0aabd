package query_test

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. With VEIL_REQUIRE_BROWSER=1 (set
// by .ci/run) a missing browser fails the test instead of skipping it.
func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("VEIL_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("VEIL_REQUIRE_BROWSER") == "1" {
		t.Fatal("VEIL_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install -y chromium)")
	}
	t.Skip("chromium not installed; set VEIL_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// TestWebPageInChromium loads the ledger page in headless Chromium: the
// models and requests tables with their proof status, then a proof's log
// entry with its inclusion proof, checked by the page against the signed
// checkpoint.
func TestWebPageInChromium(t *testing.T) {
	exe := chromiumPath(t)
	_, _, base, f := fixture(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	shot := func(name string) {
		if dir := os.Getenv("VEIL_SCREENSHOT_DIR"); dir != "" {
			b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
			}
			if err != nil {
				t.Logf("screenshot %s: %v", name, err)
			}
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#requests"))); err != nil {
		t.Fatalf("index page: %v", err)
	}
	size, models := text("#log-size"), text("#models")
	r1Proof, r2Proof, r3Proof := text(`tr[data-id="r1"] td.proof`), text(`tr[data-id="r2"] td.proof`), text(`tr[data-id="r3"] td.proof`)
	if size != "8" || !strings.Contains(models, "mnist-mlp") {
		t.Errorf("index: log size %q, models %q", size, models)
	}
	if !strings.Contains(r1Proof, "proof verified") || !strings.Contains(r1Proof, "#6") {
		t.Errorf("r1 proof cell %q, want verified at #6", r1Proof)
	}
	if !strings.Contains(r2Proof, "awaiting proof") || !strings.Contains(r3Proof, "awaiting reveal") {
		t.Errorf("r2/r3 proof cells %q / %q", r2Proof, r3Proof)
	}
	if rej := text("#rejected"); !strings.Contains(rej, "ChallengeProof") || !strings.Contains(rej, "CODE_PROOF_INVALID") || !strings.Contains(rej, hex.EncodeToString(f.Key("r2"))[:12]) {
		t.Errorf("rejected table: %q", rej)
	}
	shot("ledger-index.png")

	// Follow the proof link to the log entry.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-id="r1"] td.proof a`)), chromedp.WaitVisible(chromedp.CSS("#entry"))); err != nil {
		t.Fatalf("entry page: %v", err)
	}
	kind, status, note := text("#entry-kind"), text("#inclusion-status"), text("#note")
	proofItems, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#inclusion li").length`))
	if err != nil {
		t.Fatal(err)
	}
	if kind != "ChallengeProof" || !strings.Contains(status, "verifies") {
		t.Errorf("entry page: kind %q, status %q", kind, status)
	}
	// Leaf 6 of 8: the inclusion proof has 3 hashes (log2 8).
	if proofItems != 3 || !strings.HasPrefix(note, "veil-ledger/"+chain+"\n8\n") {
		t.Errorf("entry page: %d proof hashes, note %q", proofItems, note)
	}
	shot("ledger-entry.png")

	// A missing request shows an error page, not a blank one.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/requests/"+hex.EncodeToString(f.KeyOf("mnist-mlp", "nope"))), chromedp.WaitVisible(chromedp.CSS("#error"))); err != nil {
		t.Fatalf("missing request page: %v", err)
	}
	if e := text("#error"); !strings.Contains(e, "not found") {
		t.Errorf("missing request page says %q", e)
	}
}
