package e2e

// The market end to end (issue 14): gRPC inference, the embedded ledger
// with real Groth16 verification and real dispute checks (heverify), a
// funded client paying through the model's offer. One test per path: paid,
// refunded and slashed, fraud proven, framing refused.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	inferencev1 "github.com/veil-project/veil/api/veil/inference/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/internal/testmodels"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
)

// marketOptions put the test chain on the market: fees, an offer at price
// with stake, a faucet that funds every client.
type marketOptions struct{ price, stake uint64 }

const (
	clientFunds = 50 * ledger.Unit
	// The proof deadline and the dispute window of market chains, in
	// blocks of 20 ms: 5 s and 3 s, room for a real proof under load.
	marketDeadline = 250
	disputeWindow  = 150
)

func onMarket() *marketOptions {
	return &marketOptions{price: ledger.Unit / 100, stake: 100 * ledger.Unit}
}

func (m *marketOptions) params(faucet, server ed25519.PrivateKey) ledger.Params {
	p := ledger.MarketDefaults()
	p.DisputeWindowBlocks = disputeWindow
	p.MinUnbondingDelayBlocks = 10
	p.Genesis = []ledger.Allocation{
		{Account: faucet.Public().(ed25519.PublicKey), Amount: 10_000 * ledger.Unit},
		{Account: server.Public().(ed25519.PublicKey), Amount: 1_000 * ledger.Unit},
	}
	return ledger.Params{ProofDeadlineBlocks: marketDeadline, Market: p}
}

func (e *env) balance(t *testing.T, k ed25519.PublicKey) uint64 {
	t.Helper()
	b, err := protocol.BalanceOf(context.Background(), e.node, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) offer(t *testing.T) *ledgerv1.OfferRecord {
	t.Helper()
	o, err := e.node.Offer(context.Background(), e.w.m.Name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// feeAt is the fee the transaction at log index i paid.
func (e *env) feeAt(t *testing.T, i uint64) uint64 {
	t.Helper()
	raw, err := e.node.Tx(i)
	if err != nil {
		t.Fatal(err)
	}
	tx, rj := ledger.DecodeTx(chainID, raw)
	if rj != nil {
		t.Fatal(rj)
	}
	f, rj := e.node.Params().Market.Fee(tx.Body, len(raw))
	if rj != nil {
		t.Fatal(rj)
	}
	return f
}

func (e *env) record(t *testing.T, key [32]byte) *ledgerv1.RequestRecord {
	t.Helper()
	r, err := e.node.Request(context.Background(), key[:])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// prove runs the prover until the request is proven and returns the proof
// index.
func (e *env) prove(t *testing.T, req *protocol.Request) uint64 {
	t.Helper()
	for i := 0; i < 3; i++ {
		if _, err := e.dep.Prover.ProveOnce(context.Background()); err != nil {
			t.Logf("prover: %v", err)
		}
		if r := e.record(t, req.Key); r.Status == ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN {
			return r.ProofIndex
		}
	}
	t.Fatal("the request was not proven")
	return 0
}

// An honest provider is paid: the client's accepting verdict releases the
// escrow, less the pool's share; every party pays its own fees, exactly.
func TestMarketHonestProviderIsPaid(t *testing.T) {
	e := newEnv(t, options{market: onMarket()})
	ctx := context.Background()
	client, server := e.client.Key.Public().(ed25519.PublicKey), e.serverKey.Public().(ed25519.PublicKey)
	client0, server0 := e.balance(t, client), e.balance(t, server)
	if e.client.Price != ledger.Unit/100 {
		t.Fatalf("the client pays %d, the offer asks %d", e.client.Price, ledger.Unit/100)
	}
	req, out := e.round(t, 0)
	if !out.Accept {
		t.Fatalf("an honest answer rejected: %s", out.Detail)
	}
	esc, err := e.client.WaitEscrow(ctx, req, 30*time.Second)
	if err != nil || esc.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
		t.Fatalf("escrow %v: %v", esc, err)
	}
	price := e.client.Price
	share := price * 500 / 10000
	wantClient := client0 - price - e.feeAt(t, out.RevealIndex) - e.feeAt(t, out.VerdictIndex)
	wantServer := server0 - e.feeAt(t, out.ReceiptIndex) - e.feeAt(t, out.ProofIndex) + price - share
	if got := e.balance(t, client); got != wantClient {
		t.Errorf("client holds %d, want %d", got, wantClient)
	}
	if got := e.balance(t, server); got != wantServer {
		t.Errorf("server holds %d, want %d", got, wantServer)
	}
	if o := e.offer(t); o.Paid != 1 || o.Proven != 1 || o.Earned != price-share || o.Reserved != 0 {
		t.Errorf("offer record %+v", o)
	}
	if _, err := e.node.AuditSupply(); err != nil {
		t.Fatal(err)
	}
	// A request that does not pay the offer's price is refused by the
	// server before it evaluates anything.
	e.client.Price = 0
	if _, err := e.client.Classify(ctx, e.w.test.Images[1]); err == nil {
		t.Fatal("a request at price 0 was answered")
	}
}

// A provider that does not prove: every node refunds the client and
// slashes half the request's collateral at the deadline, half of it to the
// client. Nobody has to ask.
func TestMarketMissedProofIsRefundedAndSlashed(t *testing.T) {
	e := newEnv(t, options{market: onMarket(), prover: func(protocol.ChallengeProver) protocol.ChallengeProver { return refusingProver{} }})
	ctx := context.Background()
	client, server := e.client.Key.Public().(ed25519.PublicKey), e.serverKey.Public().(ed25519.PublicKey)
	client0, server0 := e.balance(t, client), e.balance(t, server)
	req, err := e.client.Classify(ctx, e.w.test.Images[2])
	if err != nil {
		t.Fatal(err)
	}
	receipt, reveal, err := e.client.Reveal(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dep.Prover.ProveOnce(ctx); err == nil {
		t.Fatal("the refusing prover proved")
	}
	esc, err := e.client.WaitEscrow(ctx, req, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	coll := ledger.Unit // max(1 VEIL, 20 × 0.01)
	slash := uint64(coll) / 2
	if esc.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED || esc.Slashed != slash || esc.ToClient != slash/2 {
		t.Fatalf("escrow after the deadline: %+v", esc)
	}
	if got, want := e.balance(t, client), client0-e.feeAt(t, reveal)+slash/2; got != want {
		t.Errorf("client holds %d, want %d (refunded, plus half the slash)", got, want)
	}
	if got, want := e.balance(t, server), server0-e.feeAt(t, receipt); got != want {
		t.Errorf("server holds %d, want %d", got, want)
	}
	if o := e.offer(t); o.Missed != 1 || o.Bonded != 100*ledger.Unit-slash || o.Slashed != slash {
		t.Errorf("offer record %+v", o)
	}
	// The client's NO_PROOF verdict is accepted now, and changes nothing.
	out, err := e.client.Settle(ctx, req, 30*time.Second)
	if err != nil || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_NO_PROOF {
		t.Fatalf("verdict %v: %v", out, err)
	}
	if _, err := e.node.AuditSupply(); err != nil {
		t.Fatal(err)
	}
}

type refusingProver struct{}

func (refusingProver) Prove(context.Context, []pixels.Image) (*zk.Proof, error) {
	return nil, errors.New("this provider does not prove")
}

// A provider that runs another model (on every block, so a challenge block
// is surely hit): the client's dispute proves it to every node; the escrow
// is refunded and the whole collateral slashed, half to the client.
func TestMarketFraudIsProvenAndSlashed(t *testing.T) {
	e := newEnv(t, options{market: onMarket(), evaluator: func(w *world) (server.Evaluator, error) {
		net, err := compileWith(testmodels.Perturbed(w.m, 25))
		return netEvaluator{net}, err
	}})
	ctx := context.Background()
	client := e.client.Key.Public().(ed25519.PublicKey)
	client0 := e.balance(t, client)
	req, out := e.round(t, 3)
	if out.Accept || out.Reason != ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER {
		t.Fatalf("the cheat was not noticed: %v %s", out.Reason, out.Detail)
	}
	res, err := e.client.Dispute(ctx, req, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dispute #%d: %s", res.Index, res.Detail)
	esc, err := e.client.WaitEscrow(ctx, req, 30*time.Second)
	if err != nil || esc.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD || esc.Slashed != ledger.Unit {
		t.Fatalf("escrow after the dispute: %+v %v", esc, err)
	}
	ds, err := e.node.Disputes(ctx, 5)
	if err != nil || len(ds) != 1 || ds[0].Outcome != ledgerv1.Code_CODE_OK || ds[0].Bond != 0 {
		t.Fatalf("dispute records %v: %v", ds, err)
	}
	fees := e.feeAt(t, out.RevealIndex) + e.feeAt(t, out.VerdictIndex) + e.feeAt(t, res.Index)
	if got, want := e.balance(t, client), client0-fees+ledger.Unit/2; got != want {
		t.Errorf("client holds %d, want %d (price back, half the collateral)", got, want)
	}
	if ledger.Unit/2 <= fees {
		t.Errorf("the client's share of the slash (%d) does not cover its fees (%d): an honest client would lose by disputing", ledger.Unit/2, fees)
	}
	if o := e.offer(t); o.Frauds != 1 || o.Bonded != 99*ledger.Unit {
		t.Errorf("offer record %+v", o)
	}
	if _, err := e.node.AuditSupply(); err != nil {
		t.Fatal(err)
	}
}

// A client cannot frame an honest provider. Its own Dispute refuses to
// submit what would fail; forced through, a dispute of an honest answer,
// one with another seed, and one whose input does not hold what was
// revealed are each recorded as failed, and each costs the client its bond
// (paid to the provider, which is paid its price at once); a dispute after
// the window is refused outright.
func TestMarketFramingAttemptIsRefused(t *testing.T) {
	e := newEnv(t, options{market: onMarket()})
	ctx := context.Background()
	server := e.serverKey.Public().(ed25519.PublicKey)
	bond := e.node.Params().Market.DisputeBond

	submit := func(body *ledgerv1.Dispute) uint64 {
		t.Helper()
		tx, err := ledger.Signer{ChainID: chainID, Key: e.client.Key}.Dispute(body)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.node.Submit(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		return res.Index
	}
	lastOutcome := func() *ledgerv1.DisputeRecord {
		ds, err := e.node.Disputes(ctx, 1)
		if err != nil || len(ds) != 1 {
			t.Fatalf("disputes %v: %v", ds, err)
		}
		return ds[0]
	}
	judged := func(idx int) (*protocol.Request, *protocol.Outcome) {
		t.Helper()
		req, err := e.client.Classify(ctx, e.w.test.Images[idx])
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.client.Reveal(ctx, req); err != nil {
			t.Fatal(err)
		}
		return req, e.client.Judge(ctx, req, e.prove(t, req))
	}

	// 1. An honest answer: the client's own check refuses to dispute it.
	req, out := judged(4)
	if !out.Accept {
		t.Fatalf("an honest answer judged %v: %s", out.Reason, out.Detail)
	}
	if _, err := e.client.Dispute(ctx, req, out); !errors.Is(err, protocol.ErrNoFraud) {
		t.Fatalf("Dispute of an honest answer: %v", err)
	}
	// Forced: the client claims fraud anyway.
	body, _, err := e.client.DisputeBody(req, out)
	if err != nil {
		t.Fatal(err)
	}
	client0, server0 := e.balance(t, e.client.Key.Public().(ed25519.PublicKey)), e.balance(t, server)
	idx := submit(body)
	if d := lastOutcome(); d.Outcome != ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST || d.Bond != bond {
		t.Fatalf("a dispute of an honest answer: %+v", d)
	}
	if got, want := e.balance(t, e.client.Key.Public().(ed25519.PublicKey)), client0-bond-e.feeAt(t, idx); got != want {
		t.Errorf("client holds %d, want %d", got, want)
	}
	price := e.client.Price
	if got, want := e.balance(t, server), server0+bond+price-price*500/10000; got != want {
		t.Errorf("server holds %d, want %d (bond and price)", got, want)
	}

	// 2. Another seed: the keys do not rebuild the receipt's bundle.
	req, out = judged(5)
	body, _, _ = e.client.DisputeBody(req, out)
	body.SessionSeed[0] ^= 1
	submit(body)
	if d := lastOutcome(); d.Outcome != ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH {
		t.Fatalf("a dispute with another seed: %+v", d)
	}

	// 3. The input holds another challenge than the one revealed: the
	// honest answer then differs from the proof of the revealed image, but
	// every node sees that the client encrypted something else.
	forged := e.forgedRequest(t, 6)
	fb := &ledgerv1.Dispute{
		ModelId: e.w.m.Name, RequestId: forged.id, SessionSeed: forged.seed[:], CkksParameters: forged.lit,
		GaloisElements: e.client.Classifier.GaloisElements(), InputCiphertext: forged.input, OutputCiphertext: forged.output,
	}
	submit(fb)
	if d := lastOutcome(); d.Outcome != ledgerv1.Code_CODE_DISPUTE_FRAMING {
		t.Fatalf("a framing dispute: %+v (%s)", d, d.Detail)
	}

	// 4. After the window: refused, nothing recorded.
	req, out = judged(7)
	body, _, _ = e.client.DisputeBody(req, out)
	proven := e.record(t, req.Key)
	for h, _, _, _ := e.node.Head(); h <= proven.ProofDeadline+disputeWindow+marketDeadline; h, _, _, _ = e.node.Head() {
		if esc, _ := e.node.Escrow(ctx, req.Key[:]); esc.GetStatus() == ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tx, _ := ledger.Signer{ChainID: chainID, Key: e.client.Key}.Dispute(body)
	var rj *ledger.Rejection
	if _, err := e.node.Submit(ctx, tx); !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_DISPUTE_WINDOW_CLOSED {
		t.Fatalf("a dispute after the window: %v", err)
	}
	if _, err := e.node.AuditSupply(); err != nil {
		t.Fatal(err)
	}
}

// forged is a request whose ciphertext holds other challenges than the
// ones its commitment (and so its reveal) names: made below the protocol
// client, as a cheating client would.
type forged struct {
	id            string
	seed          [32]byte
	lit           []byte
	input, output []byte
}

func (e *env) forgedRequest(t *testing.T, idx int) *forged {
	t.Helper()
	ctx := context.Background()
	c := e.client
	cl := c.Classifier
	w := e.w
	encrypted := [][]uint8{w.test.Images[idx][:], w.pool.Images[1][:], w.pool.Images[2][:], w.pool.Images[3][:]}
	revealed := [][]byte{w.pool.Images[9][:], w.pool.Images[2][:], w.pool.Images[3][:]} // the first is not what block 1 holds
	positions := []uint32{1, 2, 3}
	salt := make([]byte, 32)
	rand.Read(salt)
	commitment := ledger.ChallengeCommitment(revealed, positions, salt)
	f := &forged{id: "forged"}
	images := make([][]uint8, cl.Layout().Blocks)
	copy(images, encrypted)
	res, err := cl.ClassifyWith(ctx, images, func(in []byte) (*inferencev1.VerifiableRequest, error) {
		kd, id := cl.KeysDigest(), sha256.Sum256(in)
		d := ledger.ClientRequestDigest(chainID, w.m.Name, f.id, kd[:], id[:], commitment[:], 4, c.Price)
		return &inferencev1.VerifiableRequest{RequestId: f.id, ChallengeCommitment: commitment[:], NumBlocks: 4, ChainId: chainID, Price: c.Price,
			ClientKey: c.Key.Public().(ed25519.PublicKey), ClientSignature: ed25519.Sign(c.Key, d[:])}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key := ledger.RequestKey(w.m.Name, c.Key.Public().(ed25519.PublicKey), f.id)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := e.node.Request(ctx, key[:]); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the forged request's receipt never landed: %v", err)
		}
	}
	rv, err := ledger.Signer{ChainID: chainID, Key: c.Key}.Reveal(&ledgerv1.ChallengeReveal{ModelId: w.m.Name, RequestId: f.id, Challenges: revealed, Positions: positions, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.Submit(ctx, rv); err != nil {
		t.Fatal(err)
	}
	e.prove(t, &protocol.Request{Key: key})
	f.seed = cl.SessionSeed()
	if f.lit, err = cl.Parameters().Literal().MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	f.input, f.output = res.Input, res.Output
	if !bytes.Equal(e.record(t, key).InputDigest, func() []byte { d := sha256.Sum256(f.input); return d[:] }()) {
		t.Fatal("the receipt names another input")
	}
	return f
}
