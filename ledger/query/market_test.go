package query_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
)

// marketFixture is a node with an offer, a request paid by an accepting
// verdict (p), one refunded after a proven fraud (d), and one locked (l).
func marketFixture(t *testing.T) (grpcAddr, httpURL string, f *ledgertest.Fixture) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f = ledgertest.NewFixture(chain, "mq")
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: ledgertest.FakeVerifier{},
		Disputes: ledgertest.FakeDisputes{}, SigningKey: ledgertest.Key("node"), Params: f.FundedParams(50, 5000)})
	if err != nil {
		t.Fatal(err)
	}
	p, d, l := f.NewRequest("m", "p", 3), f.NewRequest("m", "d", 3), f.NewRequest("m", "l", 3)
	for _, r := range []*ledgertest.Request{p, d, l} {
		r.Price = 25
	}
	for i, batch := range [][][]byte{
		{f.Register("m"), f.Offer("m", 25, 500, 10)},
		{f.Receipt(p), f.Receipt(d), f.Receipt(l), f.Reveal(p), f.Reveal(d)},
		{f.Proof([]*ledgertest.Request{p}, false), f.Proof([]*ledgertest.Request{d}, false)},
		{f.Verdict("p", true), f.Dispute(d, 0)},
	} {
		rs, err := n.SubmitBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range rs {
			if r.Code != ledgerv1.Code_CODE_OK {
				t.Fatalf("batch %d tx %d: %v", i, j, r)
			}
		}
	}
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- query.Serve(ctx, n, gl, hl) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	return gl.Addr().String(), "http://" + hl.Addr().String(), f
}

func TestMarketOverGRPC(t *testing.T) {
	ctx := context.Background()
	addr, _, f := marketFixture(t)
	c, err := query.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	os, err := c.Offers(ctx)
	if err != nil || len(os) != 1 {
		t.Fatalf("offers %v: %v", os, err)
	}
	// Collateral 2 × 25 = 50, fraud slashes all of it.
	if o := os[0]; o.Price != 25 || o.Bonded != 450 || o.Paid != 1 || o.Frauds != 1 || o.Reserved != 50 {
		t.Fatalf("offer %+v", o)
	}
	e, err := c.Escrow(ctx, f.Key("d"))
	if err != nil || e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD || e.Slashed != 50 {
		t.Fatalf("escrow of d: %+v %v", e, err)
	}
	es, err := c.Escrows(ctx, 10)
	if err != nil || len(es) != 3 || es[0].Status != ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED {
		t.Fatalf("escrows %v: %v", es, err)
	}
	ds, err := c.Disputes(ctx, 10)
	if err != nil || len(ds) != 1 || ds[0].Outcome != ledgerv1.Code_CODE_OK {
		t.Fatalf("disputes %v: %v", ds, err)
	}
	a, err := c.Account(ctx, f.Client.Public().(ed25519.PublicKey))
	// 5000 - 3×25 escrowed - 4 fees (two reveals, a verdict, a dispute)
	// + 25 refunded + 25 (half the slash)
	if err != nil || a.Balance != 5000-75-40+25+25 {
		t.Fatalf("client account %+v: %v", a, err)
	}
	if as, err := c.Accounts(ctx, 2, nil); err != nil || len(as) != 2 {
		t.Fatalf("accounts: %v %v", as, err)
	}
	if s, err := c.Supply(ctx); err != nil || s.Genesis != 15000 || s.Burned != 25 {
		t.Fatalf("supply %+v: %v", s, err)
	}
	if _, err := c.Offer(ctx, "none"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("a missing offer: %v", err)
	}
}

func TestMarketOverHTTP(t *testing.T) {
	_, base, f := marketFixture(t)
	get := func(path string, want int) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, b, want)
		}
		return b
	}
	var o ledgerv1.OfferRecord
	if err := protojson.Unmarshal(get("/api/v1/offers/m", 200), &o); err != nil || o.Price != 25 {
		t.Fatalf("offer: %v %v", &o, err)
	}
	var e ledgerv1.EscrowRecord
	if err := protojson.Unmarshal(get("/api/v1/escrows/"+hex.EncodeToString(f.Key("p")), 200), &e); err != nil || e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
		t.Fatalf("escrow: %v %v", &e, err)
	}
	get("/api/v1/escrows/zz", 400)
	get("/api/v1/offers/none", 404)
	get("/api/v1/accounts?limit=5000", 400)
	get("/api/v1/accounts/"+hex.EncodeToString(f.Server.Public().(ed25519.PublicKey)), 200)
	get("/api/v1/disputes", 200)
	get("/api/v1/supply", 200)
	html := string(get("/", 200))
	for _, want := range []string{`id="offers"`, "0.000025", "refunded: fraud proven", "paid to the provider", "locked: awaiting the proof", "fraud proven", `id="accounts"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

// The market on the page, in a browser: offers with their record,
// escrows with their status, disputes with their outcome, accounts.
func TestMarketPageInChromium(t *testing.T) {
	exe := chromiumPath(t)
	_, base, _ := marketFixture(t)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#offers"))); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	offer, disputes, escrows := text(`tr.offer[data-model="m"]`), text("#disputes"), text("#escrows")
	accounts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#accounts tr.account").length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer, "0.000025") || !strings.Contains(offer, "0.000450") {
		t.Errorf("offer row %q", offer)
	}
	if !strings.Contains(disputes, "fraud proven") || !strings.Contains(escrows, "refunded: fraud proven") || accounts != 3 {
		t.Errorf("disputes %q, escrows %q, %d accounts", disputes, escrows, accounts)
	}
}
