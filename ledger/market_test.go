package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
)

// market is a store on a chain with FundedParams and a registered model
// "m" (no offer yet).
type market struct {
	t *testing.T
	s *ledger.Store
	f *ledgertest.Fixture
	p ledger.Params
}

const (
	testBalance  = 10_000
	testDeadline = 4
)

func newMarket(t *testing.T, mod ...func(*ledger.Options)) *market {
	t.Helper()
	f := ledgertest.NewFixture(chain, "market")
	p := f.FundedParams(testDeadline, testBalance, ledgertest.Key("x1").Public().(ed25519.PublicKey))
	s := openStore(t, filepath.Join(t.TempDir(), "ledger.db"), append([]func(*ledger.Options){func(o *ledger.Options) {
		o.Params, o.Disputes = p, ledgertest.FakeDisputes{}
	}}, mod...)...)
	t.Cleanup(func() { s.Close() })
	m := &market{t: t, s: s, f: f, p: p}
	m.ok(m.block(f.Register("m")))
	m.audit()
	return m
}

func (m *market) block(txs ...[]byte) []ledger.Result {
	m.t.Helper()
	rs := applyBlock(m.t, m.s, txs...)
	m.audit()
	return rs
}

// wait applies n empty blocks.
func (m *market) wait(n int) {
	m.t.Helper()
	for i := 0; i < n; i++ {
		m.block()
	}
}

func (m *market) ok(rs []ledger.Result) {
	m.t.Helper()
	mustOK(m.t, rs)
}

func (m *market) want(r ledger.Result, code ledgerv1.Code) {
	m.t.Helper()
	if r.Code != code {
		m.t.Fatalf("code %v (%s), want %v", r.Code, r.Reason, code)
	}
}

func (m *market) audit() ledger.SupplyAudit {
	m.t.Helper()
	a, err := m.s.AuditSupply()
	if err != nil {
		m.t.Fatal(err)
	}
	return a
}

func (m *market) balance(k ed25519.PrivateKey) uint64 {
	m.t.Helper()
	a, err := m.s.Account(context.Background(), k.Public().(ed25519.PublicKey))
	if err != nil {
		m.t.Fatal(err)
	}
	return a.Balance
}

func (m *market) offer() *ledgerv1.OfferRecord {
	m.t.Helper()
	o, err := m.s.Offer(context.Background(), "m")
	if err != nil {
		m.t.Fatal(err)
	}
	return o
}

func (m *market) escrow(r *ledgertest.Request) *ledgerv1.EscrowRecord {
	m.t.Helper()
	e, err := m.s.Escrow(context.Background(), m.f.KeyOf(r.ModelID, r.ID))
	if err != nil {
		m.t.Fatal(err)
	}
	return e
}

func (m *market) supply() *ledgerv1.SupplyRecord {
	m.t.Helper()
	s, err := m.s.Supply(context.Background())
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// priced makes a request at the offer's price.
func (m *market) priced(id string, price uint64) *ledgertest.Request {
	r := m.f.NewRequest("m", id, 3)
	r.Price = price
	return r
}

const fee = 10 // FundedParams' fee for every transaction

func TestFeesTransfersAndOverdrafts(t *testing.T) {
	m := newMarket(t)
	f := m.f
	x1, x2 := ledgertest.Key("x1"), ledgertest.Key("x2")
	owner0, x10 := m.balance(f.Owner), m.balance(x1)
	if owner0 != testBalance-fee || x10 != testBalance {
		t.Fatalf("balances after the registration: owner %d, x1 %d", owner0, x10)
	}
	// A transfer costs its amount and the fee.
	m.ok(m.block(f.Transfer(x1, x2.Public().(ed25519.PublicKey), 1000)))
	if got := m.balance(x1); got != testBalance-1000-fee {
		t.Fatalf("x1 holds %d after sending 1000", got)
	}
	if got := m.balance(x2); got != 1000 {
		t.Fatalf("x2 holds %d", got)
	}
	// An overdraft is refused and moves nothing, not even the fee.
	before := m.balance(x1)
	m.want(m.block(f.Transfer(x1, x2.Public().(ed25519.PublicKey), before))[0], ledgerv1.Code_CODE_INSUFFICIENT_FUNDS)
	if m.balance(x1) != before || m.balance(x2) != 1000 {
		t.Fatal("a refused overdraft changed a balance")
	}
	// A double spend: two transfers of most of the balance in one block;
	// the second finds the first's debit and is refused.
	spend := before/2 + 1
	rs := m.block(f.Transfer(x1, x2.Public().(ed25519.PublicKey), spend), f.Transfer(x1, f.Owner.Public().(ed25519.PublicKey), spend))
	m.want(rs[0], ledgerv1.Code_CODE_OK)
	m.want(rs[1], ledgerv1.Code_CODE_INSUFFICIENT_FUNDS)
	// Replaying the accepted transfer is a duplicate, not a second payment.
	m.want(m.block(f.Transfer(x1, x2.Public().(ed25519.PublicKey), spend))[0], ledgerv1.Code_CODE_DUPLICATE_TX)
	// An account with nothing cannot pay a fee: refused with its own code,
	// whatever the transaction (a registration here, the spam the fees
	// stop).
	broke := ledgertest.NewFixture(chain, "broke")
	m.want(m.block(broke.Register("spam"))[0], ledgerv1.Code_CODE_UNFUNDED)
	m.want(m.block(broke.Transfer(broke.Owner, x2.Public().(ed25519.PublicKey), 1))[0], ledgerv1.Code_CODE_UNFUNDED)
	// x2 can pay the fee but not fee + amount: an overdraft, not unfunded.
	m.want(m.block(f.Transfer(x2, x1.Public().(ed25519.PublicKey), m.balance(x2)))[0], ledgerv1.Code_CODE_INSUFFICIENT_FUNDS)
	// Fees went to the pool: 1 registration + 2 transfers accepted.
	if got := m.supply().Pool; got != 3*fee {
		t.Fatalf("pool holds %d, want %d", got, 3*fee)
	}
	// The fee table: a base fee per type plus a fee per byte.
	p := ledger.MarketParams{FeePerByte: 2, DefaultFee: 5, Fees: map[string]uint64{"transfer": 100}}
	tx, _ := ledger.DecodeTx(chain, f.Transfer(x1, x2.Public().(ed25519.PublicKey), 1))
	if got, _ := p.Fee(tx.Body, 50); got != 100+2*50 {
		t.Fatalf("transfer fee %d, want 200", got)
	}
	tx, _ = ledger.DecodeTx(chain, f.Unbond("m", 1))
	if got, _ := p.Fee(tx.Body, 10); got != 5+20 {
		t.Fatalf("default fee %d, want 25", got)
	}
	if _, rj := (ledger.MarketParams{FeePerByte: 1 << 62}).Fee(tx.Body, 1<<10); rj == nil || rj.Code != ledgerv1.Code_CODE_AMOUNT_OVERFLOW {
		t.Fatalf("an overflowing fee: %v", rj)
	}
}

func TestMarketParamsValidate(t *testing.T) {
	k := ledgertest.Key("a").Public().(ed25519.PublicKey)
	for name, p := range map[string]ledger.MarketParams{
		"unknown fee type":   {Fees: map[string]uint64{"bribe": 1}},
		"huge fee":           {DefaultFee: 1 << 41},
		"fraction over 100%": {SlashToClientBps: 10001},
		"double allocation":  {Genesis: []ledger.Allocation{{Account: k, Amount: 1}, {Account: k, Amount: 2}}},
		"supply overflow":    {Genesis: []ledger.Allocation{{Account: k, Amount: 1 << 62}, {Account: ledgertest.Key("b").Public().(ed25519.PublicKey), Amount: 1}}},
		"short account":      {Genesis: []ledger.Allocation{{Account: k[:31], Amount: 1}}},
	} {
		if err := (ledger.Params{ProofDeadlineBlocks: 5, Market: p}).Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d := ledger.Params{ProofDeadlineBlocks: 60, Market: ledger.MarketDefaults()}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := ledger.ParamsFromProto(d.Proto())
	if err != nil || !back.Equal(d) {
		t.Fatalf("parameters do not round-trip: %v", err)
	}
}

func TestGenesisAllocationsAreStateAndSurviveReopen(t *testing.T) {
	f := ledgertest.NewFixture(chain, "gen")
	p := f.FundedParams(5, 777)
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openStore(t, path, func(o *ledger.Options) { o.Params = p })
	cp, _ := s.Checkpoint(context.Background())
	if bytes.Equal(cp.StateHash, make([]byte, 32)) {
		t.Fatal("genesis balances are not in the state hash")
	}
	s.Close()
	s = openStore(t, path)
	defer s.Close()
	if a, _ := s.Account(context.Background(), f.Client.Public().(ed25519.PublicKey)); a.GetBalance() != 777 {
		t.Fatalf("client holds %d after reopening", a.GetBalance())
	}
	if !s.Params().Equal(p) {
		t.Fatal("the reopened store has other parameters")
	}
	if a, err := s.AuditSupply(); err != nil || a.Genesis != 3*777 {
		t.Fatalf("audit %+v: %v", a, err)
	}
}

func TestOfferStakeAndUnbonding(t *testing.T) {
	m := newMarket(t)
	f := m.f
	// Only the model's server key offers it.
	m.want(m.block(signed(f.Signer(f.Client).Offer(&ledgerv1.ProviderOffer{ModelId: "m", Price: 10, Bond: 100, UnbondingDelayBlocks: 5})))[0], ledgerv1.Code_CODE_UNAUTHORIZED)
	m.want(m.block(f.Offer("m", 10, 200, 1))[0], ledgerv1.Code_CODE_UNBONDING_TOO_SHORT)
	m.want(m.block(f.Offer("m", 10, testBalance, 5))[0], ledgerv1.Code_CODE_INSUFFICIENT_FUNDS)
	m.want(m.block(f.Unbond("m", 1))[0], ledgerv1.Code_CODE_NO_OFFER)
	server0 := m.balance(f.Server)
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	if o := m.offer(); o.Bonded != 200 || o.Price != 10 || !bytes.Equal(o.Provider, f.Server.Public().(ed25519.PublicKey)) {
		t.Fatalf("offer %+v", o)
	}
	if got := m.balance(f.Server); got != server0-200-fee {
		t.Fatalf("server holds %d after bonding 200", got)
	}
	// A request reserves its collateral (2 × 10 = 20): that stake cannot be
	// unbonded while the request is pending.
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r), f.Reveal(r)))
	if o := m.offer(); o.Reserved != 20 {
		t.Fatalf("reserved %d, want 20", o.Reserved)
	}
	m.want(m.block(f.Unbond("m", 201))[0], ledgerv1.Code_CODE_INSUFFICIENT_STAKE)
	m.want(m.block(f.Unbond("m", 181))[0], ledgerv1.Code_CODE_STAKE_RESERVED)
	res := m.block(f.Unbond("m", 80))
	m.ok(res)
	m.want(m.block(f.Withdraw("m"))[0], ledgerv1.Code_CODE_UNBONDING_NOT_DUE)
	// r1 is never proven: at its deadline its collateral (reserved from
	// bonded stake at the receipt, never unbondable) pays the slash of 10;
	// the unbonding 80 is untouched. Unbonding stake backs no new request
	// either: 110 bonded, and another unbond of 21 leaves 89, below the
	// minimum of 100.
	m.ok(m.block(f.Unbond("m", 21)))
	if e := m.escrow(r); e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED || e.Slashed != 10 {
		t.Fatalf("escrow of r1: %+v", e)
	}
	m.want(m.block(f.Receipt(m.priced("r2", 10)))[0], ledgerv1.Code_CODE_OFFER_INACTIVE)
	release := res[0].Height + 5
	for h, _, _, _ := m.s.Head(); h+1 < release; h++ {
		m.block()
	}
	server1 := m.balance(f.Server)
	m.ok(m.block(f.Withdraw("m")))
	if got := m.balance(f.Server); got != server1+80-fee {
		t.Fatalf("server holds %d after withdrawing 80 (had %d)", got, server1)
	}
	if o := m.offer(); o.Bonded != 89 || o.Reserved != 0 || o.Slashed != 10 || len(o.Unbonding) != 1 || o.Unbonding[0].Amount != 21 {
		t.Fatalf("offer after the withdrawal: %+v", o)
	}
}

// The paid path: the receipt locks the price; the proof opens the dispute
// window; its end pays the provider less the pool's share.
func TestEscrowIsPaidAfterTheDisputeWindow(t *testing.T) {
	m := newMarket(t)
	f := m.f
	m.want(m.block(f.Receipt(m.priced("early", 10)))[0], ledgerv1.Code_CODE_NO_OFFER)
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	m.want(m.block(f.Receipt(m.priced("cheap", 9)))[0], ledgerv1.Code_CODE_PRICE_MISMATCH)
	m.want(m.block(f.Receipt(m.priced("dear", 11)))[0], ledgerv1.Code_CODE_PRICE_MISMATCH)
	client0, server0 := m.balance(f.Client), m.balance(f.Server)
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r)))
	e := m.escrow(r)
	if e.Amount != 10 || e.Collateral != 20 || e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED {
		t.Fatalf("escrow %+v", e)
	}
	if got := m.balance(f.Client); got != client0-10 {
		t.Fatalf("the client holds %d after its receipt (had %d)", got, client0)
	}
	m.ok(m.block(f.Reveal(r)))
	proof := m.block(f.Proof([]*ledgertest.Request{r}, false))
	m.ok(proof)
	if e = m.escrow(r); e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN || e.DueHeight != proof[0].Height+4 {
		t.Fatalf("escrow after the proof: %v due %d (proof at %d)", e.Status, e.DueHeight, proof[0].Height)
	}
	m.wait(2) // heights proof+1, proof+2: still disputable
	if m.escrow(r).Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN {
		t.Fatal("paid before the window closed")
	}
	pool0 := m.supply().Pool
	m.wait(2)
	e = m.escrow(r)
	if e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
		t.Fatalf("escrow after the window: %v", e.Status)
	}
	// server: -2 fees (receipt, proof) +10 -1 (the pool's 10%).
	if got := m.balance(f.Server); got != server0-2*fee+9 {
		t.Fatalf("server holds %d, want %d", got, server0-2*fee+9)
	}
	if got := m.supply().Pool; got != pool0+1 {
		t.Fatalf("pool %d, want %d", got, pool0+1)
	}
	o := m.offer()
	if o.Reserved != 0 || o.Proven != 1 || o.Paid != 1 || o.Earned != 9 || o.Bonded != 200 {
		t.Fatalf("offer record %+v", o)
	}
	// Too late to dispute now.
	m.want(m.block(f.Dispute(r, 0))[0], ledgerv1.Code_CODE_DISPUTE_WINDOW_CLOSED)
}

func TestAcceptingVerdictPaysAtOnce(t *testing.T) {
	m := newMarket(t)
	f := m.f
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r), f.Reveal(r)))
	m.ok(m.block(f.Proof([]*ledgertest.Request{r}, false)))
	m.ok(m.block(f.Verdict("r1", true)))
	if e := m.escrow(r); e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID {
		t.Fatalf("escrow after an accepting verdict: %v", e.Status)
	}
	m.want(m.block(f.Dispute(r, 0))[0], ledgerv1.Code_CODE_DISPUTE_WINDOW_CLOSED)
}

// Verifiable absence: a revealed request with no valid proof by its
// deadline is refunded and its provider slashed, at the same height on
// every node, without anyone sending anything.
func TestMissedProofIsRefundedAndSlashed(t *testing.T) {
	m := newMarket(t)
	f := m.f
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	client0 := m.balance(f.Client)
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r)))
	reveal := m.block(f.Reveal(r))
	m.ok(reveal)
	// An invalid proof is refused, as before: it does not stop the clock.
	m.want(m.block(f.Proof([]*ledgertest.Request{r}, true))[0], ledgerv1.Code_CODE_PROOF_INVALID)
	burned0 := m.supply().Burned
	for h, _, _, _ := m.s.Head(); h < reveal[0].Height+testDeadline; h++ {
		if m.escrow(r).Status != ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED {
			t.Fatalf("settled at height %d, before the deadline %d passed", h, reveal[0].Height+testDeadline)
		}
		m.block()
	}
	m.block()
	e := m.escrow(r)
	// Collateral 20, half slashed (10), half of that (5) to the client.
	if e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED || e.Slashed != 10 || e.ToClient != 5 {
		t.Fatalf("escrow after the deadline: %+v", e)
	}
	// The client paid the reveal fee and got the price back plus 5.
	if got := m.balance(f.Client); got != client0-fee+5 {
		t.Fatalf("client holds %d, want %d", got, client0-fee+5)
	}
	o := m.offer()
	if o.Bonded != 190 || o.Reserved != 0 || o.Missed != 1 || o.Slashed != 10 {
		t.Fatalf("offer after the miss: %+v", o)
	}
	if got := m.supply().Burned; got != burned0+5 {
		t.Fatalf("burned %d, want %d", got, burned0+5)
	}
	// The client's verdict may follow; a late proof is recorded but pays
	// nothing: the escrow is settled.
	m.ok(m.block(f.Proof([]*ledgertest.Request{r}, false)))
	if m.escrow(r).Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED {
		t.Fatal("a late proof changed a settled escrow")
	}
	m.want(m.block(f.Dispute(r, 0))[0], ledgerv1.Code_CODE_ESCROW_SETTLED)
}

// A client that takes the answer and never reveals its challenges pays:
// otherwise every answer could be had for free.
func TestUnrevealedRequestIsPaid(t *testing.T) {
	m := newMarket(t)
	f := m.f
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r)))
	m.wait(testDeadline + 1)
	if e := m.escrow(r); e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID || e.Slashed != 0 {
		t.Fatalf("escrow of an unrevealed request after its deadline: %+v", e)
	}
	m.want(m.block(f.Reveal(r))[0], ledgerv1.Code_CODE_ESCROW_SETTLED)
	if o := m.offer(); o.Bonded != 200 || o.Missed != 0 {
		t.Fatalf("an unrevealed request slashed the provider: %+v", o)
	}
}

func TestDisputes(t *testing.T) {
	type want struct {
		code    ledgerv1.Code // of the transaction
		outcome ledgerv1.Code // of the dispute, when accepted
	}
	for _, tc := range []struct {
		name    string
		outcome byte
		w       want
	}{
		{"fraud proven", 0, want{ledgerv1.Code_CODE_OK, ledgerv1.Code_CODE_OK}},
		{"keys do not match", 1, want{ledgerv1.Code_CODE_OK, ledgerv1.Code_CODE_DISPUTE_KEYS_MISMATCH}},
		{"framing", 2, want{ledgerv1.Code_CODE_OK, ledgerv1.Code_CODE_DISPUTE_FRAMING}},
		{"honest answer", 3, want{ledgerv1.Code_CODE_OK, ledgerv1.Code_CODE_DISPUTE_ANSWER_HONEST}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMarket(t)
			f := m.f
			m.ok(m.block(f.Offer("m", 10, 200, 5)))
			r := m.priced("r1", 10)
			m.ok(m.block(f.Receipt(r)))
			m.want(m.block(f.Dispute(r, tc.outcome))[0], ledgerv1.Code_CODE_DISPUTE_NOT_PROVEN)
			m.ok(m.block(f.Reveal(r)))
			m.ok(m.block(f.Proof([]*ledgertest.Request{r}, false)))
			// Ciphertexts that are not the receipt's are no evidence.
			bad := f.DisputeBody(r, tc.outcome)
			bad.OutputCiphertext = []byte("another output")
			m.want(m.block(signed(f.Signer(f.Client).Dispute(bad)))[0], ledgerv1.Code_CODE_EVIDENCE_MISMATCH)
			// Nobody but the client can dispute its request.
			other := f.DisputeBody(r, tc.outcome)
			m.want(m.block(signed(f.Signer(f.Server).Dispute(other)))[0], ledgerv1.Code_CODE_UNKNOWN_REQUEST)
			client0, server0, burned0 := m.balance(f.Client), m.balance(f.Server), m.supply().Burned
			res := m.block(f.Dispute(r, tc.outcome))
			m.want(res[0], tc.w.code)
			ds, err := m.s.Disputes(context.Background(), 10)
			if err != nil || len(ds) != 1 {
				t.Fatalf("disputes %v, %v", ds, err)
			}
			d, e, o := ds[0], m.escrow(r), m.offer()
			if d.Outcome != tc.w.outcome || d.Index != res[0].Index {
				t.Fatalf("dispute record %+v", d)
			}
			if tc.w.outcome == ledgerv1.Code_CODE_OK {
				// Refund 10 + half of the whole collateral (20): 10; the
				// bond comes back; the other 10 burned.
				if e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD || m.balance(f.Client) != client0-fee+20 {
					t.Fatalf("after a proven fraud: escrow %v, client %d (had %d)", e.Status, m.balance(f.Client), client0)
				}
				if o.Bonded != 180 || o.Frauds != 1 || o.Slashed != 20 || m.supply().Burned != burned0+10 {
					t.Fatalf("offer after a proven fraud: %+v", o)
				}
			} else {
				// The bond (30) goes to the provider, which is paid (9).
				if e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PAID || m.balance(f.Client) != client0-fee-30 || m.balance(f.Server) != server0+30+9 {
					t.Fatalf("after a failed dispute: escrow %v, client %d (had %d), server %d (had %d)", e.Status, m.balance(f.Client), client0, m.balance(f.Server), server0)
				}
				if o.Bonded != 200 || o.DisputesWon != 1 || d.Bond != 30 {
					t.Fatalf("offer after a failed dispute: %+v", o)
				}
			}
			// One dispute per request.
			if r := m.block(f.Dispute(r, 0))[0]; r.OK() {
				t.Fatal("a second dispute was accepted")
			}
		})
	}
}

func TestDisputeRefusals(t *testing.T) {
	// A request of a model without an offer has nothing at stake.
	m := newMarket(t)
	f := m.f
	free := f.NewRequest("m", "free", 3)
	m.ok(m.block(f.Receipt(free), f.Reveal(free)))
	m.ok(m.block(f.Proof([]*ledgertest.Request{free}, false)))
	m.want(m.block(f.Dispute(free, 0))[0], ledgerv1.Code_CODE_NO_ESCROW)

	// A client who cannot put up the bond.
	m.ok(m.block(f.Offer("m", 10, 200, 5)))
	r := m.priced("r1", 10)
	m.ok(m.block(f.Receipt(r), f.Reveal(r)))
	m.ok(m.block(f.Proof([]*ledgertest.Request{r}, false)))
	m.ok(m.block(f.Transfer(f.Client, ledgertest.Key("x1").Public().(ed25519.PublicKey), m.balance(f.Client)-fee-fee-29)))
	m.want(m.block(f.Dispute(r, 0))[0], ledgerv1.Code_CODE_INSUFFICIENT_FUNDS)

	// A node without a dispute verifier refuses disputes.
	n := newMarket(t, func(o *ledger.Options) { o.Disputes = nil })
	n.ok(n.block(n.f.Offer("m", 10, 200, 5)))
	r2 := n.priced("r2", 10)
	n.ok(n.block(n.f.Receipt(r2), n.f.Reveal(r2)))
	n.ok(n.block(n.f.Proof([]*ledgertest.Request{r2}, false)))
	n.want(n.block(n.f.Dispute(r2, 0))[0], ledgerv1.Code_CODE_DISPUTES_UNSUPPORTED)
}

// A dispute may be as large as two ciphertexts of N = 2^14; nothing else
// may exceed MaxTxBytes.
func TestDisputeSizeLimit(t *testing.T) {
	f := ledgertest.NewFixture(chain, "size")
	r := f.NewRequest("m", "r", 3)
	d := f.DisputeBody(r, 0)
	d.InputCiphertext = make([]byte, 490_000)
	d.OutputCiphertext = make([]byte, 490_000)
	raw, err := f.Signer(f.Client).Dispute(d)
	if err != nil {
		t.Fatalf("a 980 KB dispute was refused: %v", err)
	}
	if _, rj := ledger.DecodeTx(chain, raw); rj != nil {
		t.Fatalf("a 980 KB dispute does not decode: %v", rj)
	}
	d.OutputCiphertext = make([]byte, ledger.MaxDisputeTxBytes)
	if _, err := f.Signer(f.Client).Dispute(d); err == nil {
		t.Fatal("a dispute over MaxDisputeTxBytes was signed")
	}
}

// The conservation invariant over random transaction sequences: after
// every block, balances + bonded + unbonding + locked escrows + pool +
// burned = genesis, no offer reserves more than it bonds, and two stores
// that apply the same blocks reach the same state (every rule is
// deterministic).
func TestMarketConservationProperty(t *testing.T) {
	sequences, blocks := 40, 30
	if testing.Short() {
		sequences = 8
	}
	seen := map[string]int{} // accepted transactions by type, and settled escrows by status
	for seq := 0; seq < sequences; seq++ {
		rng := rand.New(rand.NewPCG(uint64(seq), 14))
		f := ledgertest.NewFixture(chain, "prop")
		extra := []ed25519.PrivateKey{ledgertest.Key("p1"), ledgertest.Key("p2")}
		p := f.FundedParams(3, 2000, extra[0].Public().(ed25519.PublicKey), extra[1].Public().(ed25519.PublicKey))
		p.Market.FeePerByte = uint64(rng.IntN(2))
		p.Market.DisputeWindowBlocks = 8
		var stores []*ledger.Store
		for i := 0; i < 2; i++ {
			s := openStore(t, filepath.Join(t.TempDir(), fmt.Sprintf("s%d.db", i)), func(o *ledger.Options) {
				o.Params, o.Disputes = p, ledgertest.FakeDisputes{}
				ledger.SetNoSync(o)
			})
			defer s.Close()
			stores = append(stores, s)
		}
		accounts := append([]ed25519.PrivateKey{f.Owner, f.Server, f.Client}, extra...)
		// Requests by the stage the ledger accepted them to, so that most
		// transactions address a request they could apply to.
		var receipted, revealed, proven []*ledgertest.Request
		pick := func(rs []*ledgertest.Request) *ledgertest.Request { return rs[rng.IntN(len(rs))] }
		byTx := map[string]*ledgertest.Request{}
		n := 0
		price := uint64(0)
		gen := func() []byte {
			switch k := rng.IntN(13); {
			case k == 0:
				from, to := accounts[rng.IntN(len(accounts))], accounts[rng.IntN(len(accounts))]
				return f.Transfer(from, to.Public().(ed25519.PublicKey), uint64(rng.IntN(3000))+1)
			case k == 1:
				price = uint64(rng.IntN(50))
				return f.Offer("m", price, uint64(rng.IntN(400)), uint64(2+rng.IntN(4)))
			case k == 2:
				return f.Unbond("m", uint64(rng.IntN(200))+1)
			case k == 3:
				return f.Withdraw("m")
			case k <= 5 || len(receipted) == 0:
				n++
				r := f.NewRequest("m", fmt.Sprintf("r%d", n), 2+rng.IntN(3))
				r.Price = price
				if rng.IntN(8) == 0 {
					r.Price++ // a price the offer does not ask
				}
				tx := f.Receipt(r)
				byTx[string(tx)] = r
				return tx
			case k <= 7 || len(revealed) == 0:
				r := pick(receipted)
				tx := f.Reveal(r)
				byTx[string(tx)] = r
				return tx
			case k == 8 || len(proven) == 0:
				r := pick(revealed)
				tx := f.Proof([]*ledgertest.Request{r}, rng.IntN(6) == 0)
				byTx[string(tx)] = r
				return tx
			case k == 9:
				return f.Verdict(pick(proven).ID, rng.IntN(2) == 0)
			}
			recent := proven[max(0, len(proven)-3):]
			return f.Dispute(pick(recent), byte(rng.IntN(5)))
		}
		first := [][]byte{f.Register("m")}
		for b := 0; b < blocks; b++ {
			var txs [][]byte
			if b == 0 {
				txs = first
			}
			for n := rng.IntN(5); n > 0; n-- {
				txs = append(txs, gen())
			}
			var results [][]ledger.Result
			for _, s := range stores {
				results = append(results, applyBlock(t, s, txs...))
				if _, err := s.AuditSupply(); err != nil {
					t.Fatalf("sequence %d block %d: %v", seq, b, err)
				}
			}
			for i := range results[0] {
				if results[0][i].OK() {
					kind, _ := ledger.Describe(txs[i])
					seen[kind]++
					if r := byTx[string(txs[i])]; r != nil {
						switch kind {
						case "InferenceReceipt":
							receipted = append(receipted, r)
						case "ChallengeReveal":
							revealed = append(revealed, r)
						case "ChallengeProof":
							proven = append(proven, r)
						}
					}
				}
				if results[0][i].Code != results[1][i].Code {
					t.Fatalf("sequence %d block %d tx %d: codes %v and %v", seq, b, i, results[0][i].Code, results[1][i].Code)
				}
			}
			_, _, h0, _ := stores[0].Head()
			_, _, h1, _ := stores[1].Head()
			if !bytes.Equal(h0, h1) {
				t.Fatalf("sequence %d block %d: app hashes differ", seq, b)
			}
		}
		es, _ := stores[0].Escrows(context.Background(), 1000)
		for _, e := range es {
			seen[e.Status.String()]++
		}
		ds, _ := stores[0].Disputes(context.Background(), 1000)
		for _, d := range ds {
			seen["dispute "+d.Outcome.String()]++
		}
	}
	t.Logf("over %d sequences: %v", sequences, seen)
	// The sequences must reach every path, or they test little (the few
	// sequences of -short need not reach the rare ones).
	if testing.Short() {
		return
	}
	for _, k := range []string{"Transfer", "ProviderOffer", "Unbond", "Withdraw", "InferenceReceipt", "ChallengeReveal", "ChallengeProof", "Dispute",
		"ESCROW_STATUS_PAID", "ESCROW_STATUS_REFUNDED_MISSED", "ESCROW_STATUS_REFUNDED_FRAUD", "dispute CODE_OK"} {
		if seen[k] == 0 {
			t.Errorf("no sequence reached %s", k)
		}
	}
	if seen["Dispute"] == seen["dispute CODE_OK"] {
		t.Error("no sequence had a dispute fail")
	}
}

func signed(raw []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return raw
}
