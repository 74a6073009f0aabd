package query

import (
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// NewHTTPHandler serves the JSON API under /api/v1/ and the web page.
//
//	POST /api/v1/submit                 {"tx": "<base64>"} -> SubmitResponse
//	GET  /api/v1/checkpoint
//	GET  /api/v1/entries/{index}        transaction + inclusion proof
//	GET  /api/v1/consistency?from=N[&to=M]
//	GET  /api/v1/models                 GET /api/v1/models/{id}[?key=1]
//	GET  /api/v1/requests[?model=&limit=&before=]
//	GET  /api/v1/requests/{key}   (64 hex digits: ledger.RequestKey)
//	GET  /api/v1/chain
//	GET  /api/v1/setup/{ceremony}/{phase}
//	GET  /api/v1/rejections             this node's recent rejections
//	GET  /api/v1/accounts, offers, escrows, disputes, supply (market.go)
//	GET  /                              models, requests, proofs, the market
//	GET  /requests/{key}, /entries/{index}
func NewHTTPHandler(api ledger.API) http.Handler {
	h := &httpHandler{api: api}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/submit", h.submit)
	mux.HandleFunc("GET /api/v1/checkpoint", h.jsonOf(func(r *http.Request) (proto.Message, error) { return api.Checkpoint(r.Context()) }))
	mux.HandleFunc("GET /api/v1/entries/{index}", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		i, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
		if err != nil {
			return nil, badRequest("index must be a number")
		}
		return api.Entry(r.Context(), i)
	}))
	mux.HandleFunc("GET /api/v1/consistency", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		from, err1 := strconv.ParseUint(r.FormValue("from"), 10, 64)
		to, err2 := uintOr(r.FormValue("to"), 0)
		if err1 != nil || err2 != nil {
			return nil, badRequest("from (and to) must be numbers")
		}
		return api.Consistency(r.Context(), from, to)
	}))
	mux.HandleFunc("GET /api/v1/models", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		ms, err := api.Models(r.Context())
		return &ledgerv1.ListModelsResponse{Models: ms}, err
	}))
	mux.HandleFunc("GET /api/v1/models/{id}", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		return api.Model(r.Context(), r.PathValue("id"), r.FormValue("key") == "1")
	}))
	mux.HandleFunc("GET /api/v1/requests", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		q, err := listQuery(r)
		if err != nil {
			return nil, err
		}
		rs, err := api.Requests(r.Context(), q)
		return &ledgerv1.ListRequestsResponse{Requests: rs}, err
	}))
	mux.HandleFunc("GET /api/v1/requests/{key}", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		k, err := requestKey(r)
		if err != nil {
			return nil, err
		}
		return api.Request(r.Context(), k)
	}))
	mux.HandleFunc("GET /api/v1/chain", h.jsonOf(func(r *http.Request) (proto.Message, error) { return api.ChainInfo(r.Context()) }))
	mux.HandleFunc("GET /api/v1/setup/{ceremony}/{phase}", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		p, err := strconv.ParseUint(r.PathValue("phase"), 10, 32)
		if err != nil {
			return nil, badRequest("phase must be a number")
		}
		return api.Setup(r.Context(), r.PathValue("ceremony"), uint32(p))
	}))
	mux.HandleFunc("GET /api/v1/rejections", h.jsonOf(func(r *http.Request) (proto.Message, error) {
		rs, err := api.Rejections(r.Context())
		return &ledgerv1.ListRejectionsResponse{Rejections: rs}, err
	}))
	marketRoutes(mux, h) // market.go
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /requests/{key}", h.request)
	mux.HandleFunc("GET /entries/{index}", h.entry)
	return mux
}

type httpHandler struct{ api ledger.API }

type unsupportedMedia string

func (u unsupportedMedia) Error() string { return string(u) }

type badRequest string

func (b badRequest) Error() string { return string(b) }

func uintOr(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// requestKey reads a request key (64 hex digits) from the path.
func requestKey(r *http.Request) ([]byte, error) {
	k, err := hex.DecodeString(r.PathValue("key"))
	if err != nil || len(k) != 32 {
		return nil, badRequest("a request key is 64 hex digits")
	}
	return k, nil
}

func listQuery(r *http.Request) (*ledgerv1.ListRequestsRequest, error) {
	limit, err1 := uintOr(r.FormValue("limit"), 0)
	before, err2 := uintOr(r.FormValue("before"), 0)
	if err1 != nil || err2 != nil || limit > 1000 {
		return nil, badRequest("limit (<= 1000) and before must be numbers")
	}
	return &ledgerv1.ListRequestsRequest{ModelId: r.FormValue("model"), Limit: uint32(limit), BeforeIndex: before}, nil
}

func httpStatus(err error) int {
	var um unsupportedMedia
	if errors.As(err, &um) {
		return http.StatusUnsupportedMediaType
	}
	var br badRequest
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest
	case errors.Is(err, ledger.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

var jsonOpts = protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}

func writeJSON(w http.ResponseWriter, status int, m proto.Message) {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeJSONError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus(err))
	fmt.Fprintf(w, "{\"error\": %q}\n", err.Error())
}

func (h *httpHandler) jsonOf(f func(r *http.Request) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := f(r)
		if err != nil {
			writeJSONError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	}
}

func (h *httpHandler) submit(w http.ResponseWriter, r *http.Request) {
	// A web page may POST to a node on the operator's machine, but only
	// with a "simple" content type unless the node answers a CORS
	// preflight, which it never does: requiring JSON keeps other sites'
	// pages from submitting through the operator's browser.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeJSONError(w, unsupportedMedia("submissions are JSON: Content-Type: application/json"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2*ledger.MaxDisputeTxBytes))
	if err != nil {
		writeJSONError(w, badRequest("read body: "+err.Error()))
		return
	}
	var req ledgerv1.SubmitRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		writeJSONError(w, badRequest("body must be {\"tx\": \"<base64>\"}: "+err.Error()))
		return
	}
	resp, err := (&GRPCServer{API: h.api}).Submit(r.Context(), &req)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	status := http.StatusOK
	if resp.Code != ledgerv1.Code_CODE_OK {
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, resp)
}

// ----- the web page -----

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"hex": func(b []byte) string { return hex.EncodeToString(b) },
	"short": func(b []byte) string {
		s := hex.EncodeToString(b)
		if len(s) > 16 {
			return s[:16] + "…"
		}
		return s
	},
	"status":  statusText,
	"amount":  amount,
	"escrow":  escrowText,
	"outcome": outcomeText,
}).Parse(pageHTML))

func statusText(r *ledgerv1.RequestRecord) string {
	switch r.Status {
	case ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN:
		return "proof verified"
	case ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED:
		return "awaiting proof"
	case ledgerv1.RequestStatus_REQUEST_STATUS_RECEIPTED:
		return "awaiting reveal"
	}
	return "unknown"
}

type pageData struct {
	Title      string
	Checkpoint *ledgerv1.Checkpoint
	Models     []*ledgerv1.ModelRecord
	Requests   []*ledgerv1.RequestRecord
	Rejected   []*ledgerv1.Rejected
	Request    *ledgerv1.RequestRecord
	Entry      *entryView
	Market     *marketView
	Error      string
}

type entryView struct {
	*ledgerv1.Entry
	Kind     string
	Signer   []byte
	TxHash   []byte
	Verified string // empty when the proof verifies
	Summary  string
}

func (h *httpHandler) render(w http.ResponseWriter, status int, d *pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, d); err != nil {
		fmt.Fprintf(w, "<p>template error: %s</p>", template.HTMLEscapeString(err.Error()))
	}
}

func (h *httpHandler) fail(w http.ResponseWriter, err error) {
	h.render(w, httpStatus(err), &pageData{Title: "Error", Error: err.Error()})
}

func (h *httpHandler) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cp, err := h.api.Checkpoint(ctx)
	if err != nil {
		h.fail(w, err)
		return
	}
	models, err := h.api.Models(ctx)
	if err != nil {
		h.fail(w, err)
		return
	}
	q, err := listQuery(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	reqs, err := h.api.Requests(ctx, q)
	if err != nil {
		h.fail(w, err)
		return
	}
	rejected, err := h.api.Rejections(ctx)
	if err != nil {
		h.fail(w, err)
		return
	}
	if len(rejected) > 20 {
		rejected = rejected[:20]
	}
	market, err := marketOf(ctx, h.api)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, http.StatusOK, &pageData{Title: "Veil verifier ledger", Checkpoint: cp, Models: models, Requests: reqs, Rejected: rejected, Market: market})
}

func (h *httpHandler) request(w http.ResponseWriter, r *http.Request) {
	k, err := requestKey(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	rec, err := h.api.Request(r.Context(), k)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, http.StatusOK, &pageData{Title: "Request " + rec.RequestId, Request: rec})
}

func (h *httpHandler) entry(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		h.fail(w, badRequest("index must be a number"))
		return
	}
	e, err := h.api.Entry(r.Context(), i)
	if err != nil {
		h.fail(w, err)
		return
	}
	v := &entryView{Entry: e}
	th := ledger.TxHash(e.Tx)
	v.TxHash = th[:]
	var stx ledgerv1.SignedTx
	if proto.Unmarshal(e.Tx, &stx) == nil {
		v.Signer = stx.Signer
	}
	v.Kind, v.Summary = ledger.Describe(e.Tx)
	// The page checks the proof it shows, against the key that signed the
	// checkpoint; `veil ledger verify-inclusion` does the same offline with
	// a key the user trusts.
	if err := ledger.VerifyInclusion(e, nil); err != nil {
		v.Verified = err.Error()
	}
	h.render(w, http.StatusOK, &pageData{Title: fmt.Sprintf("Log entry %d", i), Entry: v})
}

const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}
code,pre{font:12px ui-monospace,monospace}
pre{background:#f6f6f6;padding:.7em;overflow-x:auto}
.ok{color:#06702f;font-weight:600}.wait{color:#8a6100}.bad{color:#b00020;font-weight:600}
nav a{margin-right:1em}
</style></head><body>
<nav><a href="/">Ledger</a><a href="/api/v1/checkpoint">checkpoint (JSON)</a></nav>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="bad" id="error">{{.Error}}</p>{{end}}
{{with .Checkpoint}}
<p id="checkpoint">Log size <b id="log-size">{{.Size}}</b> at height {{.Height}}, root <code>{{hex .RootHash}}</code>,
signed by <code>{{short .SignerKey}}</code>.</p>
{{end}}
{{if .Checkpoint}}
<h2>Models</h2>
<table id="models"><tr><th>Model</th><th>Architecture</th><th>Commitment</th><th>Verifying key</th><th>Receipts</th><th>Proofs</th><th>Registered</th></tr>
{{range .Models}}<tr><td>{{.ModelId}}</td><td>{{.Architecture}}</td><td><code>{{short .Commitment}}</code></td><td><code>{{short .VerifyingKeyHash}}</code></td>
<td>{{.Receipts}}</td><td>{{.Proofs}}</td><td><a href="/entries/{{.Index}}">#{{.Index}}</a></td></tr>
{{else}}<tr><td colspan="7">No models registered.</td></tr>{{end}}
</table>
<h2>Requests</h2>
<table id="requests"><tr><th>Request</th><th>Model</th><th>Receipt</th><th>Challenges</th><th>Proof</th><th>Verdict</th></tr>
{{range .Requests}}<tr class="request" data-id="{{.RequestId}}"><td><a href="/requests/{{hex .RequestKey}}">{{.RequestId}}</a></td><td>{{.ModelId}}</td>
<td><a href="/entries/{{.ReceiptIndex}}">#{{.ReceiptIndex}}</a></td>
<td>{{if ge .Status 2}}{{.NumChallenges}} revealed (<a href="/entries/{{.RevealIndex}}">#{{.RevealIndex}}</a>){{else}}hidden{{end}}</td>
<td class="proof">{{if eq .Status 3}}<span class="ok">{{status .}}</span> <a href="/entries/{{.ProofIndex}}">#{{.ProofIndex}}</a>{{else}}<span class="wait">{{status .}}</span>{{end}}</td>
<td>{{if .HasVerdict}}{{if .VerdictAccept}}<span class="ok">accepted</span>{{else}}<span class="bad">rejected</span>{{end}}{{else}}–{{end}}</td></tr>
{{else}}<tr><td colspan="6">No requests yet.</td></tr>{{end}}
</table>
{{with .Market}}
<h2>Offers</h2>
<table id="offers"><tr><th>Model</th><th>Provider</th><th>Endpoint</th><th>Price per image</th><th>Stake (reserved)</th><th>Unbonding</th><th>Proven</th><th>Paid</th><th>Missed</th><th>Frauds</th><th>Slashed</th><th>Earned</th></tr>
{{range .Offers}}<tr class="offer" data-model="{{.ModelId}}"><td>{{.ModelId}}</td><td><code>{{short .Provider}}</code></td><td>{{.Endpoint}}</td><td>{{amount .Price}}</td>
<td>{{amount .Bonded}} ({{amount .Reserved}})</td><td>{{len .Unbonding}} entries, {{.UnbondingDelayBlocks}} blocks</td>
<td>{{.Proven}}</td><td>{{.Paid}}</td><td>{{if .Missed}}<span class="bad">{{.Missed}}</span>{{else}}0{{end}}</td><td>{{if .Frauds}}<span class="bad">{{.Frauds}}</span>{{else}}0{{end}}</td>
<td>{{amount .Slashed}}</td><td>{{amount .Earned}}</td></tr>
{{else}}<tr><td colspan="12">No offers.</td></tr>{{end}}
</table>
<h2>Escrows</h2>
<table id="escrows"><tr><th>Request</th><th>Model</th><th>Client</th><th>Price</th><th>Collateral</th><th>Status</th><th>Slashed (to the client)</th></tr>
{{range .Escrows}}<tr class="escrow" data-status="{{.Status}}"><td><a href="/requests/{{hex .RequestKey}}"><code>{{short .RequestKey}}</code></a></td><td>{{.ModelId}}</td><td><code>{{short .Client}}</code></td>
<td>{{amount .Amount}}</td><td>{{amount .Collateral}}</td><td>{{escrow .}}</td><td>{{if .Slashed}}{{amount .Slashed}} ({{amount .ToClient}}){{else}}–{{end}}</td></tr>
{{else}}<tr><td colspan="7">No escrows.</td></tr>{{end}}
</table>
<h2>Disputes</h2>
<table id="disputes"><tr><th>Dispute</th><th>Request</th><th>Model</th><th>Client</th><th>Outcome</th><th>Slashed</th><th>Bond lost</th></tr>
{{range .Disputes}}<tr class="dispute" data-outcome="{{.Outcome}}"><td><a href="/entries/{{.Index}}">#{{.Index}}</a></td><td><a href="/requests/{{hex .RequestKey}}"><code>{{short .RequestKey}}</code></a></td><td>{{.ModelId}}</td>
<td><code>{{short .Client}}</code></td><td>{{if eq .Outcome 0}}<span class="bad">{{outcome .}}</span>{{else}}{{outcome .}}{{end}} <small>{{.Detail}}</small></td><td>{{amount .Slashed}}</td><td>{{amount .Bond}}</td></tr>
{{else}}<tr><td colspan="7">No disputes.</td></tr>{{end}}
</table>
<h2>Accounts</h2>
{{with .Supply}}<p id="supply">Supply {{amount .Genesis}} at genesis; {{amount .Pool}} in the validators' pool (fees and shares), {{amount .Burned}} burned (slashes not paid to clients).</p>{{end}}
<table id="accounts"><tr><th>Account</th><th>Balance</th></tr>
{{range .Accounts}}<tr class="account"><td><code>{{hex .Account}}</code></td><td>{{amount .Balance}}</td></tr>
{{else}}<tr><td colspan="2">No accounts.</td></tr>{{end}}
</table>
{{end}}
{{if .Rejected}}
<h2>Recently rejected by this node</h2>
<p>Not part of the ledger: only accepted transactions are logged. A proof listed here failed a check on this node.</p>
<table id="rejected"><tr><th>Transaction</th><th>Type</th><th>Summary</th><th>Where</th><th>Reason</th></tr>
{{range .Rejected}}<tr class="rejected" data-kind="{{.Kind}}"><td><code>{{short .TxHash}}</code></td><td>{{.Kind}}</td><td>{{.Summary}}</td><td>{{.Where}}</td>
<td><span class="bad">{{.Code}}</span> {{.Reason}}</td></tr>{{end}}
</table>
{{end}}
{{end}}
{{with .Request}}
<table id="request">
<tr><th>Model</th><td>{{.ModelId}}</td></tr>
<tr><th>Key bundle</th><td>{{hex .KeysDigest}}</td></tr>
<tr><th>Receipt</th><td><a href="/entries/{{.ReceiptIndex}}">#{{.ReceiptIndex}}</a></td></tr>
<tr><th>Input ciphertext SHA-256</th><td><code>{{hex .InputDigest}}</code></td></tr>
<tr><th>Output ciphertext SHA-256</th><td><code>{{hex .OutputDigest}}</code></td></tr>
<tr><th>Challenge commitment</th><td><code>{{hex .ChallengeCommitment}}</code> ({{.NumBlocks}} blocks)</td></tr>
<tr><th>Reveal</th><td>{{if ge .Status 2}}<a href="/entries/{{.RevealIndex}}">#{{.RevealIndex}}</a>: {{.NumChallenges}} challenges at positions {{.Positions}}{{else}}not yet{{end}}</td></tr>
<tr><th>Proof</th><td class="proof">{{if eq .Status 3}}<span class="ok">{{status .}} by every node</span> at <a href="/entries/{{.ProofIndex}}">#{{.ProofIndex}}</a>; outputs {{.Outputs}}{{else}}<span class="wait">{{status .}}</span>{{end}}</td></tr>
<tr><th>Verdict</th><td>{{if .HasVerdict}}<a href="/entries/{{.VerdictIndex}}">#{{.VerdictIndex}}</a> {{if .VerdictAccept}}<span class="ok">accepted</span>{{else}}<span class="bad">rejected</span>{{end}} {{.VerdictReason}}{{else}}none yet{{end}}</td></tr>
</table>
{{end}}
{{with .Entry}}
<table id="entry">
<tr><th>Type</th><td id="entry-kind">{{.Kind}}</td></tr>
<tr><th>Summary</th><td>{{.Summary}}</td></tr>
<tr><th>Signer</th><td><code>{{hex .Signer}}</code></td></tr>
<tr><th>Transaction SHA-256</th><td><code>{{hex .TxHash}}</code></td></tr>
<tr><th>Leaf hash</th><td><code>{{hex .LeafHash}}</code></td></tr>
<tr><th>Inclusion proof</th><td><ol id="inclusion">{{range .Inclusion}}<li><code>{{hex .}}</code></li>{{end}}</ol>
{{if .Verified}}<span class="bad" id="inclusion-status">does not verify: {{.Verified}}</span>{{else}}<span class="ok" id="inclusion-status">verifies against the checkpoint below</span>{{end}}</td></tr>
</table>
<h2>Checkpoint</h2>
<pre id="note">{{printf "%s" .Checkpoint.Note}}</pre>
<p><a href="/api/v1/entries/{{.Index}}">this entry as JSON</a> (check it offline with <code>veil ledger verify-inclusion</code>)</p>
{{end}}
</body></html>`
