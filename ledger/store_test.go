package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

const chain = "test-chain"

func openStore(t *testing.T, path string, mod ...func(*ledger.Options)) *ledger.Store {
	t.Helper()
	o := ledger.Options{ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")}
	for _, m := range mod {
		m(&o)
	}
	s, err := ledger.Open(path, o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// applyBlock applies txs as one block and commits it.
func applyBlock(t *testing.T, s *ledger.Store, txs ...[]byte) []ledger.Result {
	t.Helper()
	h, _, _, err := s.Head()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Begin(h + 1)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Result
	for _, tx := range txs {
		r, err := b.Apply(tx)
		if err != nil {
			b.Discard()
			t.Fatalf("apply: %v", err)
		}
		out = append(out, r)
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
	return out
}

func mustOK(t *testing.T, rs []ledger.Result) {
	t.Helper()
	for i, r := range rs {
		if !r.OK() {
			t.Fatalf("tx %d rejected: %v %s", i, r.Code, r.Reason)
		}
	}
}

func TestProtocolFlowAndProofs(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	f := ledgertest.NewFixture(chain, "a")
	r1, r2 := f.NewRequest("mnist", "req-1", 4), f.NewRequest("mnist", "req-2", 3)

	mustOK(t, applyBlock(t, s, f.Register("mnist"), f.Receipt(r1), f.Receipt(r2)))
	cp1, err := s.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp1.Size != 3 || cp1.Height != 1 {
		t.Fatalf("checkpoint after block 1: size %d height %d, want 3 and 1", cp1.Size, cp1.Height)
	}
	res := applyBlock(t, s, f.Reveal(r1), f.Reveal(r2), f.Proof([]*ledgertest.Request{r1, r2}, false), f.Verdict("req-1", true))
	mustOK(t, res)
	if res[2].Index != 5 {
		t.Fatalf("proof logged at %d, want 5", res[2].Index)
	}

	rec, err := s.Request(ctx, f.Key("req-1"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN || rec.ProofIndex != 5 || rec.NumChallenges != 3 || !rec.HasVerdict || !rec.VerdictAccept {
		t.Fatalf("req-1 record: %v", rec)
	}
	if len(rec.Outputs) != 30 || rec.Outputs[0] != ledgertest.Outputs(r1.Challenges[0], 10)[0] {
		t.Fatalf("req-1 outputs: %v", rec.Outputs)
	}
	rec2, _ := s.Request(ctx, f.Key("req-2"))
	if want := ledgertest.Outputs(r2.Challenges[1], 10); len(rec2.Outputs) != 20 || rec2.Outputs[10] != want[0] {
		t.Fatalf("req-2 outputs %v, want second row to start with %d", rec2.Outputs, want[0])
	}
	m, err := s.Model(ctx, "mnist", true)
	if err != nil || m.Model.Receipts != 2 || m.Model.Proofs != 1 || !bytes.Equal(m.VerifyingKey, f.VK) {
		t.Fatalf("model record: %v, %v", m, err)
	}
	list, err := s.Requests(ctx, &ledgerv1.ListRequestsRequest{})
	if err != nil || len(list) != 2 || list[0].RequestId != "req-2" {
		t.Fatalf("requests newest first: %v %v", list, err)
	}
	// Paging: requests whose receipt is before log index 2 (req-2 is at 2).
	for _, model := range []string{"", "mnist"} {
		page, err := s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: model, BeforeIndex: 2})
		if err != nil || len(page) != 1 || page[0].RequestId != "req-1" {
			t.Fatalf("model %q before 2: %v %v", model, page, err)
		}
		page, err = s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: model, BeforeIndex: 1000})
		if err != nil || len(page) != 2 {
			t.Fatalf("model %q before 1000: %v %v", model, page, err)
		}
	}
	if none, err := s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: "other"}); err != nil || len(none) != 0 {
		t.Fatalf("other model: %v %v", none, err)
	}
	byModel, err := s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: "mnist", Limit: 1})
	if err != nil || len(byModel) != 1 || byModel[0].RequestId != "req-2" {
		t.Fatalf("requests by model: %v %v", byModel, err)
	}

	// Every entry has an inclusion proof against the latest checkpoint,
	// signed by the node key; a wrong key or a changed byte fails.
	for i := uint64(0); i < 7; i++ {
		e, err := s.Entry(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyInclusion(e, s.PublicKey()); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	e, _ := s.Entry(ctx, 5)
	bad := proto.Clone(e).(*ledgerv1.Entry)
	bad.Tx[len(bad.Tx)-1] ^= 1
	bad.LeafHash = nil
	if err := ledger.VerifyInclusion(bad, s.PublicKey()); err == nil {
		t.Fatal("inclusion proof of a changed transaction verified")
	}
	other := ledgertest.Key("other")
	if err := ledger.VerifyInclusion(e, other.Public().(ed25519.PublicKey)); err == nil {
		t.Fatal("checkpoint verified under the wrong key")
	}
	// The log of block 1 is a prefix of the current log.
	cons, err := s.Consistency(ctx, cp1.Size, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.VerifyConsistency(cp1, cons, s.PublicKey()); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	cons.Hashes[0][0] ^= 1
	if err := ledger.VerifyConsistency(cp1, cons, s.PublicKey()); err == nil {
		t.Fatal("tampered consistency proof verified")
	}
}

func TestRejections(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	f := ledgertest.NewFixture(chain, "a")
	r1 := f.NewRequest("mnist", "req-1", 4)
	r2 := f.NewRequest("mnist", "req-2", 4)
	reg, rc1 := f.Register("mnist"), f.Receipt(r1)
	mustOK(t, applyBlock(t, s, reg, rc1, f.Receipt(r2)))

	otherChain := ledgertest.NewFixture("other-chain", "a")
	var stx ledgerv1.SignedTx
	if err := proto.Unmarshal(reg, &stx); err != nil {
		t.Fatal(err)
	}
	// The owner's registration body re-signed by someone else.
	thief := ledgertest.Key("thief")
	stolen := resign(t, stx.Body, thief)
	badSig := bytes.Clone(reg)
	badSig[len(badSig)-1] ^= 1
	nonCanonical := append(bytes.Clone(reg), 0x78, 0x01) // unknown field 15, varint 1
	wrongSalt := *r1
	wrongSalt.Salt = []byte("another salt")
	unknownModelReq := f.NewRequest("no-such-model", "req-x", 3)
	tooManyOutputs := f.ProofBody([]*ledgertest.Request{r1}, false)
	tooManyOutputs.Outputs = append(tooManyOutputs.Outputs, 1)
	// A well-formed, signed registration over MaxTxBytes (only disputes
	// may be larger), and bytes over even a dispute's limit.
	hugeReg := f.RegisterBody("huge")
	hugeReg.VerifyingKey = make([]byte, ledger.MaxTxBytes)
	huge := signUnchecked(t, chain, f.Owner, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_RegisterModel{RegisterModel: hugeReg}})
	hugest := make([]byte, ledger.MaxDisputeTxBytes+1)
	setup0 := f.Sign(f.Owner, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_SetupContribution{SetupContribution: &ledgerv1.SetupContribution{
		CeremonyId: "c", Phase: 1, Index: 1, PreviousHash: make([]byte, 32), ContributionHash: bytes.Repeat([]byte{1}, 32)}}})

	cases := []struct {
		name string
		tx   []byte
		want ledgerv1.Code
	}{
		{"duplicate transaction", rc1, ledgerv1.Code_CODE_DUPLICATE_TX},
		{"same body re-signed by another key", stolen, ledgerv1.Code_CODE_REPLAYED_SIGNATURE},
		{"transaction of another chain", otherChain.Register("x"), ledgerv1.Code_CODE_WRONG_CHAIN},
		{"bad signature", badSig, ledgerv1.Code_CODE_BAD_SIGNATURE},
		{"non-canonical encoding", nonCanonical, ledgerv1.Code_CODE_NON_CANONICAL},
		{"garbage", []byte("not a transaction"), ledgerv1.Code_CODE_MALFORMED},
		{"oversized", huge, ledgerv1.Code_CODE_TOO_LARGE},
		{"over the dispute limit", hugest, ledgerv1.Code_CODE_TOO_LARGE},
		{"model registered twice", f.Sign(f.Owner, mustBody(t, f.Register("mnist"), func(b *ledgerv1.TxBody) { b.GetRegisterModel().Architecture = "v2" })), ledgerv1.Code_CODE_MODEL_EXISTS},
		{"receipt for unknown model", f.Receipt(unknownModelReq), ledgerv1.Code_CODE_UNKNOWN_MODEL},
		{"receipt signed by the client", f.Sign(f.Client, mustBody(t, f.Receipt(f.NewRequest("mnist", "req-3", 3)), nil)), ledgerv1.Code_CODE_UNAUTHORIZED},
		{"duplicate request id", f.Receipt(&ledgertest.Request{ID: "req-1", ModelID: "mnist", Challenges: r2.Challenges, Positions: r2.Positions, Salt: []byte("s")}), ledgerv1.Code_CODE_DUPLICATE_REQUEST},
		{"reveal that does not open the commitment", f.Reveal(&wrongSalt), ledgerv1.Code_CODE_COMMITMENT_MISMATCH},
		// A reveal addresses the signer's own request (the key binds the
		// client key): signed by anyone else it names a request that does
		// not exist.
		{"reveal signed by the server", f.Sign(f.Server, mustBody(t, f.Reveal(r1), nil)), ledgerv1.Code_CODE_UNKNOWN_REQUEST},
		{"registration the server key did not co-sign", f.Sign(f.Owner, mustBody(t, f.Register("hijack"), func(b *ledgerv1.TxBody) {
			b.GetRegisterModel().ServerKey = ledgertest.Key("victim server").Public().(ed25519.PublicKey)
		})), ledgerv1.Code_CODE_SERVER_NOT_CONSENTING},
		{"registration whose key is not the spec's circuit's", mustSigned(ledger.Signer{ChainID: chain, Key: f.Owner}.RegisterModel(func() *ledgerv1.RegisterModel {
			m := f.RegisterBody("wrong-key")
			m.VerifyingKey = ledgertest.FakeVK(ledgertest.FakeSpec(10), 3)
			return m
		}(), f.Server)), ledgerv1.Code_CODE_SPEC_MISMATCH},
		{"registration whose outputs disagree with the spec", mustSigned(ledger.Signer{ChainID: chain, Key: f.Owner}.RegisterModel(func() *ledgerv1.RegisterModel {
			m := f.RegisterBody("wrong-outputs")
			m.OutputsPerChallenge = 12
			return m
		}(), f.Server)), ledgerv1.Code_CODE_SPEC_MISMATCH},
		{"receipt with more challenges than a proof covers", f.Receipt(f.NewRequest("mnist", "req-too-big", f.Batch+2)), ledgerv1.Code_CODE_TOO_MANY_CHALLENGES},
		{"verdict before the proof and its deadline", f.Verdict("req-1", false), ledgerv1.Code_CODE_VERDICT_TOO_EARLY},
		{"accepting verdict with a rejecting reason", mustSigned(ledger.Signer{ChainID: chain, Key: f.Client}.Verdict(&ledgerv1.Verdict{
			ModelId: "mnist", RequestId: "req-1", Accept: true, Reason: ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF})), ledgerv1.Code_CODE_INVALID_FIELD},
		{"verdict with an unknown reason code", mustSigned(ledger.Signer{ChainID: chain, Key: f.Client}.Verdict(&ledgerv1.Verdict{
			ModelId: "mnist", RequestId: "req-1", Accept: false, Reason: 99})), ledgerv1.Code_CODE_INVALID_FIELD},
		{"reveal for unknown request", f.Reveal(f.NewRequest("mnist", "nope", 3)), ledgerv1.Code_CODE_UNKNOWN_REQUEST},
		{"proof before reveal", f.Proof([]*ledgertest.Request{r1}, false), ledgerv1.Code_CODE_NOT_REVEALED},
		{"setup contribution out of order", setup0, ledgerv1.Code_CODE_SETUP_OUT_OF_ORDER},
	}
	check := func(tx []byte, want ledgerv1.Code, name string) {
		t.Helper()
		_, size0, app0, _ := s.Head()
		if got := s.Check(tx); got.Code != want {
			t.Errorf("%s: CheckTx code %v (%s), want %v", name, got.Code, got.Reason, want)
		}
		rs := applyBlock(t, s, tx)
		if rs[0].Code != want {
			t.Errorf("%s: code %v (%s), want %v", name, rs[0].Code, rs[0].Reason, want)
		}
		// All-or-nothing: a rejected transaction changes neither the log
		// nor the state.
		_, size1, app1, _ := s.Head()
		if size1 != size0 || !bytes.Equal(app0, app1) {
			t.Errorf("%s: rejected transaction changed the ledger (size %d->%d)", name, size0, size1)
		}
	}
	for _, c := range cases {
		check(c.tx, c.want, c.name)
	}

	mustOK(t, applyBlock(t, s, f.Reveal(r1), f.Reveal(r2)))
	more := []struct {
		name string
		tx   []byte
		want ledgerv1.Code
	}{
		{"second reveal", f.Reveal(r1), ledgerv1.Code_CODE_DUPLICATE_TX},
		{"second reveal with another salt", f.Sign(f.Client, mustBody(t, f.Reveal(r1), func(b *ledgerv1.TxBody) { b.GetChallengeReveal().Salt = []byte("x") })), ledgerv1.Code_CODE_ALREADY_REVEALED},
		{"proof that fails verification", f.Proof([]*ledgertest.Request{r1}, true), ledgerv1.Code_CODE_PROOF_INVALID},
		{"proof with the wrong number of outputs", f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: tooManyOutputs}}), ledgerv1.Code_CODE_BAD_OUTPUTS},
		{"proof signed by the owner, not the server", f.Sign(f.Owner, mustBody(t, f.Proof([]*ledgertest.Request{r1}, false), nil)), ledgerv1.Code_CODE_UNAUTHORIZED},
	}
	for _, c := range more {
		check(c.tx, c.want, c.name)
	}
	mustOK(t, applyBlock(t, s, f.Proof([]*ledgertest.Request{r1}, false)))
	// A proven request cannot be called unproven, or its receipt bad.
	check(f.VerdictWith("req-1", ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF), ledgerv1.Code_CODE_VERDICT_REASON_MISMATCH, "NO_PROOF on a proven request")
	check(f.VerdictWith("req-1", ledgerv1.VerdictReason_VERDICT_REASON_BAD_RECEIPT), ledgerv1.Code_CODE_VERDICT_REASON_MISMATCH, "BAD_RECEIPT on a proven request")
	mustOK(t, applyBlock(t, s, f.Verdict("req-1", false)))
	check(f.Proof([]*ledgertest.Request{r1, r2}, false), ledgerv1.Code_CODE_ALREADY_PROVEN, "proof covering a proven request")
	check(f.Sign(f.Client, mustBody(t, f.Verdict("req-1", true), nil)), ledgerv1.Code_CODE_DUPLICATE_VERDICT, "second verdict")
	check(f.Sign(f.Server, mustBody(t, f.Verdict("req-2", true), nil)), ledgerv1.Code_CODE_UNKNOWN_REQUEST, "verdict signed by the server")

	rec, _ := s.Request(ctx, f.Key("req-1"))
	if rec.VerdictAccept || !rec.HasVerdict {
		t.Fatalf("req-1 verdict: %v", rec)
	}
}

// Within one block, a rejected transaction between two accepted ones leaves
// no trace and later transactions see the earlier ones.
func TestBlockIsSequential(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	f := ledgertest.NewFixture(chain, "a")
	r := f.NewRequest("m", "r", 3)
	res := applyBlock(t, s, f.Receipt(r), f.Register("m"), f.Receipt(r), f.Reveal(r), f.Proof([]*ledgertest.Request{r}, true), f.Proof([]*ledgertest.Request{r}, false))
	want := []ledgerv1.Code{ledgerv1.Code_CODE_UNKNOWN_MODEL, 0, 0, 0, ledgerv1.Code_CODE_PROOF_INVALID, 0}
	for i, c := range want {
		if res[i].Code != c {
			t.Fatalf("tx %d: %v (%s), want %v", i, res[i].Code, res[i].Reason, c)
		}
	}
	if res[5].Index != 3 {
		t.Fatalf("proof index %d, want 3", res[5].Index)
	}
}

func TestSetupChain(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	f := ledgertest.NewFixture(chain, "a")
	prev := make([]byte, 32)
	var txs [][]byte
	for i := 0; i < 3; i++ {
		h := bytes.Repeat([]byte{byte(i + 1)}, 32)
		txs = append(txs, f.Sign(ledgertest.Key(string(rune('a'+i))), &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_SetupContribution{SetupContribution: &ledgerv1.SetupContribution{
			CeremonyId: "mnist-v1", Phase: 2, Index: uint32(i), PreviousHash: prev, ContributionHash: h, Attestation: "contributor " + string(rune('a'+i))}}}))
		prev = h
	}
	mustOK(t, applyBlock(t, s, txs...))
	rec, err := s.Setup(ctx, "mnist-v1", 2)
	if err != nil || rec.Contributions != 3 || rec.LastHash[0] != 3 || len(rec.Indexes) != 3 {
		t.Fatalf("setup record %v %v", rec, err)
	}
	if _, err := s.Setup(ctx, "mnist-v1", 1); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("phase 1: %v, want not found", err)
	}
}

func resign(t *testing.T, body []byte, key []byte) []byte {
	t.Helper()
	priv := ledgertest.Key("thief")
	d := ledger.SigningDigest(body)
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ledgerv1.SignedTx{Body: body, Signer: priv.Public().(ed25519.PublicKey), Signature: ed25519Sign(priv, d[:])})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// mustBody decodes a signed transaction's body (for re-signing it with
// another key after an optional change).
func mustBody(t *testing.T, raw []byte, change func(*ledgerv1.TxBody)) *ledgerv1.TxBody {
	t.Helper()
	var stx ledgerv1.SignedTx
	var body ledgerv1.TxBody
	if err := proto.Unmarshal(raw, &stx); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(stx.Body, &body); err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(&body)
	}
	return &body
}

func mustSigned(raw []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return raw
}

// TestVerdictWaitsForTheProofOrItsDeadline: a client cannot reject a
// request before the server had its chance to prove it; once the deadline
// (in blocks, counted from the reveal) has passed it can, and the request
// leaves the prover's queue.
func TestVerdictWaitsForTheProofOrItsDeadline(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"), func(o *ledger.Options) { o.Params = ledger.Params{ProofDeadlineBlocks: 3} })
	defer s.Close()
	f := ledgertest.NewFixture(chain, "deadline")
	r := f.NewRequest("m", "r", 4)
	mustOK(t, applyBlock(t, s, f.Register("m"), f.Receipt(r))) // height 1
	mustOK(t, applyBlock(t, s, f.Reveal(r)))                   // height 2: deadline 5
	pending, err := s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: "m", Status: ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED})
	if err != nil || len(pending) != 1 || pending[0].ProofDeadline != 5 {
		t.Fatalf("revealed requests: %v %v", pending, err)
	}
	noProof := f.VerdictWith("r", ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF)
	for h := 3; h <= 5; h++ {
		rs := applyBlock(t, s, noProof)
		if rs[0].Code != ledgerv1.Code_CODE_VERDICT_TOO_EARLY {
			t.Fatalf("verdict at height %d: %v %s, want VERDICT_TOO_EARLY", h, rs[0].Code, rs[0].Reason)
		}
	}
	// After the deadline the reason must fit the state: a revealed,
	// unproven request can only be NO_PROOF.
	if rs := applyBlock(t, s, f.Verdict("r", false)); rs[0].Code != ledgerv1.Code_CODE_VERDICT_REASON_MISMATCH { // height 6
		t.Fatalf("OUTPUTS_DIFFER without a proof: %v", rs[0].Code)
	}
	mustOK(t, applyBlock(t, s, noProof)) // height 7
	rec, err := s.Request(ctx, f.Key("r"))
	if err != nil || !rec.HasVerdict || rec.VerdictReason != ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF {
		t.Fatalf("record after the late verdict: %v %v", rec, err)
	}
	if pending, _ := s.Requests(ctx, &ledgerv1.ListRequestsRequest{ModelId: "m", Status: ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED}); len(pending) != 0 {
		t.Fatalf("a judged request is still in the prover's queue: %v", pending)
	}
	// The parameters are the chain's: reopening with others is refused.
	s.Close()
	if _, err := ledger.Open(s.Path(), ledger.Options{ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node"), Params: ledger.Params{ProofDeadlineBlocks: 9}}); err == nil {
		t.Fatal("reopened with other chain parameters")
	}
	s2 := openStore(t, s.Path())
	defer s2.Close()
	if s2.Params().ProofDeadlineBlocks != 3 {
		t.Fatalf("reopened store has parameters %+v", s2.Params())
	}
}

// TestRequestIDsCannotBeSquatted: a request is keyed by (model, client
// key, request id). An attacker who front-runs a victim's request id gets
// a record of its own, and the victim's receipt is still accepted.
func TestRequestIDsCannotBeSquatted(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"))
	defer s.Close()
	victim := ledgertest.NewFixture(chain, "squat")
	attacker := *victim
	attacker.Client = ledgertest.Key("attacker")
	r := victim.NewRequest("m", "the-id", 4)
	stolen := &ledgertest.Request{ID: r.ID, ModelID: r.ModelID, Challenges: r.Challenges[:1], Positions: r.Positions[:1], Salt: []byte("mine")}
	mustOK(t, applyBlock(t, s, victim.Register("m"), attacker.Receipt(stolen)))
	mustOK(t, applyBlock(t, s, victim.Receipt(r)))
	mine, err := s.Request(ctx, victim.Key("the-id"))
	theirs, err2 := s.Request(ctx, attacker.KeyOf("m", "the-id"))
	if err != nil || err2 != nil || !bytes.Equal(mine.ClientKey, victim.Client.Public().(ed25519.PublicKey)) || mine.NumBlocks != 4 || theirs.NumBlocks != 2 {
		t.Fatalf("victim %v (%v), attacker %v (%v)", mine, err, theirs, err2)
	}
	// The attacker's reveal of the victim's request lands on its own
	// record (and fails there); the victim's record is untouched.
	rs := applyBlock(t, s, attacker.Reveal(r))
	if rs[0].OK() {
		t.Fatal("the attacker revealed the victim's request")
	}
	if mine, _ := s.Request(ctx, victim.Key("the-id")); mine.Status != ledgerv1.RequestStatus_REQUEST_STATUS_RECEIPTED {
		t.Fatalf("victim's request after the attacker's reveal: %v", mine)
	}
}

// signUnchecked signs body like ledger.SignTx without its size check.
func signUnchecked(t *testing.T, chainID string, key ed25519.PrivateKey, body *ledgerv1.TxBody) []byte {
	t.Helper()
	body.ChainId = chainID
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	d := ledger.SigningDigest(b)
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ledgerv1.SignedTx{Body: b, Signer: key.Public().(ed25519.PublicKey), Signature: ed25519Sign(key, d[:])})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
