package query_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
)

const chain = "query-test"

// fixture starts an embedded node with one model and three requests: r1
// proven and accepted, r2 revealed, r3 only receipted. It serves the node
// over gRPC and HTTP on loopback.
func fixture(t *testing.T) (n *embedded.Node, grpcAddr, httpURL string, f *ledgertest.Fixture) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
	if err != nil {
		t.Fatal(err)
	}
	f = ledgertest.NewFixture(chain, "q")
	r1, r2, r3 := f.NewRequest("mnist-mlp", "r1", 4), f.NewRequest("mnist-mlp", "r2", 3), f.NewRequest("mnist-mlp", "r3", 3)
	rs, err := n.SubmitBatch(ctx, [][]byte{f.Register("mnist-mlp"), f.Receipt(r1), f.Receipt(r2), f.Receipt(r3), f.Reveal(r1), f.Reveal(r2),
		f.Proof([]*ledgertest.Request{r1}, false), f.Verdict("r1", true)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Code != ledgerv1.Code_CODE_OK {
			t.Fatalf("setup tx %d: %v", i, r)
		}
	}
	// A proof that fails verification: rejected, and listed as such.
	if _, err := n.Submit(ctx, f.Proof([]*ledgertest.Request{r2}, true)); err == nil {
		t.Fatal("tampered proof accepted")
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- query.Serve(ctx, n, gl, hl) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		n.Close()
	})
	return n, gl.Addr().String(), "http://" + hl.Addr().String(), f
}

func TestGRPCClient(t *testing.T) {
	ctx := context.Background()
	n, addr, _, f := fixture(t)
	c, err := query.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var api ledger.API = c

	cp, err := api.Checkpoint(ctx)
	if err != nil || cp.Size != 8 {
		t.Fatalf("checkpoint: %v %v", cp, err)
	}
	if err := ledger.VerifyCheckpoint(cp, n.PublicKey()); err != nil {
		t.Fatal(err)
	}
	e, err := api.Entry(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyInclusion(e, n.PublicKey()); err != nil {
		t.Fatal(err)
	}
	rec, err := api.Request(ctx, f.Key("r1"))
	if err != nil || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN || rec.ProofIndex != 6 || !rec.VerdictAccept {
		t.Fatalf("r1: %v %v", rec, err)
	}
	if _, err := api.Request(ctx, f.KeyOf("mnist-mlp", "nope")); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("missing request: %v, want ErrNotFound", err)
	}
	m, err := api.Model(ctx, "mnist-mlp", true)
	if err != nil || !bytes.Equal(m.VerifyingKey, f.VK) || m.Model.Proofs != 1 {
		t.Fatalf("model: %v %v", m, err)
	}
	reqs, err := api.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: "mnist-mlp"})
	if err != nil || len(reqs) != 3 || reqs[0].RequestId != "r3" {
		t.Fatalf("requests: %v %v", reqs, err)
	}
	// Submitting through the client: accepted, then rejected as a duplicate.
	r2 := f.NewRequest("mnist-mlp", "r2", 3)
	resp, err := api.Submit(ctx, f.Proof([]*ledgertest.Request{r2}, false))
	if err != nil || resp.Index != 8 {
		t.Fatalf("submit proof: %v %v", resp, err)
	}
	_, err = api.Submit(ctx, f.Proof([]*ledgertest.Request{r2}, false))
	var rj *ledger.Rejection
	if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_DUPLICATE_TX {
		t.Fatalf("duplicate submit: %v", err)
	}
	old := cp
	cons, err := api.Consistency(ctx, old.Size, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyConsistency(old, cons, n.PublicKey()); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPJSON(t *testing.T) {
	_, _, base, f := fixture(t)
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
	var e ledgerv1.Entry
	if err := protojson.Unmarshal(get("/api/v1/entries/6", 200), &e); err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyInclusion(&e, ledgertest.Key("node").Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("entry from JSON: %v", err)
	}
	var rec ledgerv1.RequestRecord
	if err := protojson.Unmarshal(get("/api/v1/requests/"+hex.EncodeToString(f.Key("r2")), 200), &rec); err != nil || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
		t.Fatalf("r2: %v %v", &rec, err)
	}
	get("/api/v1/requests/"+hex.EncodeToString(f.KeyOf("mnist-mlp", "unknown")), 404)
	get("/api/v1/requests/r2", 400)
	get("/api/v1/entries/999", 404)
	get("/api/v1/entries/x", 400)
	var ms ledgerv1.ListModelsResponse
	if err := protojson.Unmarshal(get("/api/v1/models", 200), &ms); err != nil || len(ms.Models) != 1 {
		t.Fatalf("models: %v %v", &ms, err)
	}

	html := string(get("/", 200))
	for _, want := range []string{"mnist-mlp", "proof verified", "awaiting proof", "awaiting reveal"} {
		if !strings.Contains(html, want) {
			t.Errorf("index page lacks %q", want)
		}
	}

	post := func(tx []byte) (int, *ledgerv1.SubmitResponse) {
		body, _ := json.Marshal(map[string]string{"tx": base64.StdEncoding.EncodeToString(tx)})
		resp, err := http.Post(base+"/api/v1/submit", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r ledgerv1.SubmitResponse
		if err := protojson.Unmarshal(b, &r); err != nil {
			t.Fatalf("submit response %s: %v", b, err)
		}
		return resp.StatusCode, &r
	}
	r3 := f.NewRequest("mnist-mlp", "r3", 3)
	if code, r := post(f.Reveal(r3)); code != 200 || r.Code != ledgerv1.Code_CODE_OK || r.Index != 8 {
		t.Fatalf("submit reveal: %d %v", code, r)
	}
	if code, r := post(f.Proof([]*ledgertest.Request{r3}, true)); code != 422 || r.Code != ledgerv1.Code_CODE_PROOF_INVALID {
		t.Fatalf("submit tampered proof: %d %v", code, r)
	}
	// A form post (what another site's page could make the operator's
	// browser send without a CORS preflight) is refused.
	if resp, err := http.Post(base+"/api/v1/submit", "text/plain", strings.NewReader(`{"tx":""}`)); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain submission: %v %v", resp, err)
	}
	var rej ledgerv1.ListRejectionsResponse
	if err := protojson.Unmarshal(get("/api/v1/rejections", 200), &rej); err != nil || len(rej.Rejections) != 2 {
		t.Fatalf("rejections: %v %v", &rej, err)
	}
	if r := rej.Rejections[0]; r.Kind != "ChallengeProof" || r.Code != ledgerv1.Code_CODE_PROOF_INVALID || !strings.Contains(r.Summary, hex.EncodeToString(f.Key("r3"))[:12]) {
		t.Fatalf("newest rejection: %v", r)
	}
}

func TestListenAndServe(t *testing.T) {
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(t.TempDir(), "l.db"), ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- query.ListenAndServe(ctx, n, "127.0.0.1:0", "off", func(g, h net.Addr) { addrs <- [2]net.Addr{g, h} })
	}()
	a := <-addrs
	if a[0] == nil || a[1] != nil {
		t.Fatalf("bound %v, want gRPC only", a)
	}
	c, err := query.Dial(a[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint over the served gRPC: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel: %v", err)
	}
	if err := query.ListenAndServe(context.Background(), n, "127.0.0.1:0", "256.0.0.1:1", nil); err == nil || !strings.Contains(err.Error(), "listen for HTTP") {
		t.Fatalf("bad HTTP address: %v", err)
	}
}
