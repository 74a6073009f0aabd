package ledger

// The market (issue 14, docs/market.md): accounts and fees, provider
// offers with bonded stake, an escrow per priced request, payment after the
// proof and its dispute window, refunds and slashing when no valid proof
// comes by the deadline, and disputes that every node checks (fraud proofs).
// block.go, tx.go, store.go and query.go only dispatch here.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// State buckets of the market.
var (
	bAccounts = []byte("accounts") // ed25519 key -> balance (8 bytes BE)
	bOffers   = []byte("offers")   // model id -> OfferRecord
	bEscrows  = []byte("escrows")  // request key -> EscrowRecord
	bDue      = []byte("due")      // due height (8 bytes BE) || request key -> {} : escrows to settle at that height
	bDisputes = []byte("disputes") // log index -> DisputeRecord
	bMarket   = []byte("market")   // "supply" -> SupplyRecord
	kSupply   = []byte("supply")
)

// MaxDisputeTxBytes bounds a Dispute transaction, which carries two
// ciphertexts (about 123 KB each at the default parameters, twice that at
// N = 2^14) besides its seed: every other type stays within MaxTxBytes. It
// is below CometBFT's default mempool limit of 1 MiB per transaction.
const MaxDisputeTxBytes = 1000 << 10

// maxTxBytesFor is the size limit of a transaction of body's type.
func maxTxBytesFor(body *ledgerv1.TxBody) int {
	if _, ok := body.GetTx().(*ledgerv1.TxBody_Dispute); ok {
		return MaxDisputeTxBytes
	}
	return MaxTxBytes
}

// MaxEndpointLen bounds an offer's endpoint.
const MaxEndpointLen = 256

// MaxUnbondingEntries bounds the unbonding entries of one offer.
const MaxUnbondingEntries = 64

// ----- checked arithmetic -----

func add64(a, b uint64) (uint64, *Rejection) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, reject(ledgerv1.Code_CODE_AMOUNT_OVERFLOW, "%d + %d overflows", a, b)
	}
	return s, nil
}

func mul64(a, b uint64) (uint64, *Rejection) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 0, reject(ledgerv1.Code_CODE_AMOUNT_OVERFLOW, "%d × %d overflows", a, b)
	}
	return lo, nil
}

// bps returns amount·bps/10000, rounded down, for bps ≤ 10000 (no overflow:
// the 128-bit product's high word is below 10000).
func bps(amount uint64, bps uint32) uint64 {
	hi, lo := bits.Mul64(amount, uint64(bps))
	q, _ := bits.Div64(hi, lo, 10000)
	return q
}

// ----- the book: balance changes of one transaction -----

// book collects the balance changes of one transaction (or of one block's
// settlements) over the state visible in btx: reads see earlier changes of
// the same book, so a fee, a transfer and a bond from one account add up,
// and nothing is written until the transaction is accepted.
type book struct {
	btx     *bolt.Tx
	bal     map[string]uint64
	supply  *ledgerv1.SupplyRecord
	touched bool
}

func newBook(btx *bolt.Tx) *book { return &book{btx: btx, bal: map[string]uint64{}} }

func balanceOf(btx *bolt.Tx, key []byte) uint64 {
	v := get(btx, bAccounts, key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (b *book) balance(key []byte) uint64 {
	if v, ok := b.bal[string(key)]; ok {
		return v
	}
	return balanceOf(b.btx, key)
}

func (b *book) debit(key []byte, amount uint64, what string) *Rejection {
	have := b.balance(key)
	if have < amount {
		return reject(ledgerv1.Code_CODE_INSUFFICIENT_FUNDS, "%s: %d needed, account %x holds %d", what, amount, key[:min(8, len(key))], have)
	}
	b.bal[string(key)] = have - amount
	return nil
}

func (b *book) credit(key []byte, amount uint64) *Rejection {
	v, rj := add64(b.balance(key), amount)
	if rj != nil {
		return rj
	}
	b.bal[string(key)] = v
	return nil
}

func (b *book) supplyRecord() *ledgerv1.SupplyRecord {
	if b.supply == nil {
		b.supply = readSupply(b.btx)
	}
	return b.supply
}

func readSupply(btx *bolt.Tx) *ledgerv1.SupplyRecord {
	s := &ledgerv1.SupplyRecord{}
	if _, err := getProto(btx, bMarket, kSupply, s); err != nil {
		panic(corruptPanic{err})
	}
	return s
}

// toPool and burn move amounts already taken from an account or a stake.
func (b *book) toPool(amount uint64) *Rejection {
	s := b.supplyRecord()
	v, rj := add64(s.Pool, amount)
	s.Pool, b.touched = v, true
	return rj
}

func (b *book) burn(amount uint64) *Rejection {
	s := b.supplyRecord()
	v, rj := add64(s.Burned, amount)
	s.Burned, b.touched = v, true
	return rj
}

// write stores the changed balances in key order (the state hash sees
// writes in order, so the order must not depend on map iteration).
func (b *book) write(w *writer) error {
	keys := make([]string, 0, len(b.bal))
	for k := range b.bal {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := w.put(bAccounts, []byte(k), u64(b.bal[k])); err != nil {
			return err
		}
	}
	if b.touched {
		return w.putProto(bMarket, kSupply, b.supply)
	}
	return nil
}

// then returns the write that stores the book's changes, then runs next.
func (b *book) then(next writeFn) writeFn {
	return func(w *writer) error {
		if err := b.write(w); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		return next(w)
	}
}

func joinWrites(fns ...writeFn) writeFn {
	return func(w *writer) error {
		for _, f := range fns {
			if f == nil {
				continue
			}
			if err := f(w); err != nil {
				return err
			}
		}
		return nil
	}
}

// ----- fees: the one rule every transaction type goes through -----

// Fee is what a transaction of raw's size and body's type costs its signer.
func (p MarketParams) Fee(body *ledgerv1.TxBody, size int) (uint64, *Rejection) {
	base, ok := p.Fees[txTypeName(body)]
	if !ok {
		base = p.DefaultFee
	}
	perByte, rj := mul64(p.FeePerByte, uint64(size))
	if rj != nil {
		return 0, rj
	}
	return add64(base, perByte)
}

// chargeFee starts the transaction's book with its fee taken from the
// signer (to the pool): a signer that cannot pay is refused with
// CODE_UNFUNDED, before any other rule runs. Every transaction type, of
// every branch of the ledger, passes here (Store.check).
func (s *Store) chargeFee(btx *bolt.Tx, tx *Tx) (*book, *Rejection) {
	b := newBook(btx)
	fee, rj := s.params.Market.Fee(tx.Body, len(tx.Raw))
	if rj != nil {
		return nil, rj
	}
	if fee == 0 {
		return b, nil
	}
	if have := b.balance(tx.Signer); have < fee {
		return nil, reject(ledgerv1.Code_CODE_UNFUNDED, "the fee is %d and the signer %x holds %d", fee, tx.Signer[:8], have)
	}
	_ = b.debit(tx.Signer, fee, "fee")
	if rj := b.toPool(fee); rj != nil {
		return nil, rj
	}
	return b, nil
}

// ----- genesis -----

// genesisMarket writes the genesis balances and the supply record when the
// store is created, and returns the state hash they give (the zero hash
// without allocations, as before the market).
func (s *Store) genesisMarket(btx *bolt.Tx) ([]byte, error) {
	zero := make([]byte, 32)
	g := s.params.Market.Genesis
	if len(g) == 0 {
		return zero, nil
	}
	h := sha256.New()
	n := 0
	w := &writer{tx: btx, h: h, n: &n}
	allocs := slices.Clone(g)
	slices.SortFunc(allocs, func(a, b Allocation) int { return bytes.Compare(a.Account, b.Account) })
	for _, a := range allocs {
		if err := w.put(bAccounts, a.Account, u64(a.Amount)); err != nil {
			return nil, err
		}
	}
	if err := w.putProto(bMarket, kSupply, &ledgerv1.SupplyRecord{Genesis: s.params.Market.GenesisSupply()}); err != nil {
		return nil, err
	}
	st := sha256.New()
	st.Write(zero)
	st.Write(h.Sum(nil))
	return st.Sum(nil), nil
}

// ----- stateless checks -----

func checkKey(what string, k []byte) *Rejection {
	if len(k) != ed25519.PublicKeySize {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s must be a %d-byte ed25519 key", what, ed25519.PublicKeySize)
	}
	return nil
}

func checkAmount(what string, v uint64) *Rejection {
	if v > MaxSupply {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s %d exceeds the maximum supply", what, v)
	}
	return nil
}

// checkMarketFields is checkFields for the market's transaction types.
func checkMarketFields(body *ledgerv1.TxBody) *Rejection {
	switch t := body.Tx.(type) {
	case *ledgerv1.TxBody_Transfer:
		x := t.Transfer
		if rj := firstRejection(checkKey("to", x.To), checkAmount("amount", x.Amount)); rj != nil {
			return rj
		}
		if x.Amount == 0 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "a transfer of nothing")
		}
	case *ledgerv1.TxBody_ProviderOffer:
		o := t.ProviderOffer
		if rj := firstRejection(checkID("model_id", o.ModelId), checkAmount("price", o.Price), checkAmount("bond", o.Bond)); rj != nil {
			return rj
		}
		if len(o.Endpoint) > MaxEndpointLen || !validText(o.Endpoint) {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "endpoint must be at most %d bytes of UTF-8", MaxEndpointLen)
		}
		if o.UnbondingDelayBlocks > MaxProofDeadlineBlocks {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "unbonding delay beyond %d blocks", uint64(MaxProofDeadlineBlocks))
		}
	case *ledgerv1.TxBody_Unbond:
		u := t.Unbond
		if rj := firstRejection(checkID("model_id", u.ModelId), checkAmount("amount", u.Amount)); rj != nil {
			return rj
		}
		if u.Amount == 0 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "an unbond of nothing")
		}
	case *ledgerv1.TxBody_Withdraw:
		return checkID("model_id", t.Withdraw.ModelId)
	case *ledgerv1.TxBody_Dispute:
		d := t.Dispute
		if rj := firstRejection(checkID("model_id", d.ModelId), checkID("request_id", d.RequestId), check32("session_seed", d.SessionSeed)); rj != nil {
			return rj
		}
		if len(d.CkksParameters) == 0 || len(d.CkksParameters) > 64 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "ckks_parameters must be 1..64 bytes")
		}
		if len(d.GaloisElements) > 64 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "at most 64 Galois elements")
		}
		if len(d.InputCiphertext) == 0 || len(d.OutputCiphertext) == 0 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "a dispute carries the input and the output ciphertext")
		}
	default:
		return reject(ledgerv1.Code_CODE_MALFORMED, "not a market transaction")
	}
	return nil
}

func validText(s string) bool { return checkText("text", s) == nil }

// ----- records -----

func getOffer(btx *bolt.Tx, model string) (*ledgerv1.OfferRecord, *Rejection) {
	o := &ledgerv1.OfferRecord{}
	ok, err := getProto(btx, bOffers, []byte(model), o)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored offer: %v", err)
	}
	if !ok {
		return nil, nil
	}
	return o, nil
}

func getEscrow(btx *bolt.Tx, key []byte) (*ledgerv1.EscrowRecord, *Rejection) {
	e := &ledgerv1.EscrowRecord{}
	ok, err := getProto(btx, bEscrows, key, e)
	if err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored escrow: %v", err)
	}
	if !ok {
		return nil, nil
	}
	return e, nil
}

func dueKey(height uint64, requestKey []byte) []byte {
	return append(u64(height), requestKey...)
}

// collateral is what a request at price reserves from its offer's stake.
func (p MarketParams) collateral(price uint64) (uint64, *Rejection) {
	c, rj := mul64(p.CollateralMultiple, price)
	if rj != nil {
		return 0, rj
	}
	return max(c, p.MinCollateral), nil
}

// ----- transfers -----

func (s *Store) checkMarket(btx *bolt.Tx, tx *Tx, b *book, index, height uint64) (writeFn, *Rejection) {
	switch t := tx.Body.Tx.(type) {
	case *ledgerv1.TxBody_Transfer:
		if rj := b.debit(tx.Signer, t.Transfer.Amount, "transfer"); rj != nil {
			return nil, rj
		}
		return nil, b.credit(t.Transfer.To, t.Transfer.Amount)
	case *ledgerv1.TxBody_ProviderOffer:
		return s.checkOffer(btx, tx, b, t.ProviderOffer, index)
	case *ledgerv1.TxBody_Unbond:
		return s.checkUnbond(btx, tx, t.Unbond, height)
	case *ledgerv1.TxBody_Withdraw:
		return s.checkWithdraw(btx, tx, b, t.Withdraw, height)
	case *ledgerv1.TxBody_Dispute:
		return s.checkDispute(btx, tx, b, t.Dispute, index, height)
	}
	return nil, reject(ledgerv1.Code_CODE_MALFORMED, "not a market transaction")
}

// ----- offers and stake -----

// providerOffer finds the offer of a model whose server key signed tx.
func providerOffer(btx *bolt.Tx, tx *Tx, model string) (*ledgerv1.ModelRecord, *ledgerv1.OfferRecord, *Rejection) {
	m, rj := getModel(btx, model)
	if rj != nil {
		return nil, nil, rj
	}
	if !bytes.Equal(tx.Signer, m.ServerKey) {
		return nil, nil, reject(ledgerv1.Code_CODE_UNAUTHORIZED, "the offer of model %q belongs to its server key", trunc(model))
	}
	o, rj := getOffer(btx, model)
	if rj != nil {
		return nil, nil, rj
	}
	return m, o, nil
}

func (s *Store) checkOffer(btx *bolt.Tx, tx *Tx, b *book, o *ledgerv1.ProviderOffer, index uint64) (writeFn, *Rejection) {
	_, rec, rj := providerOffer(btx, tx, o.ModelId)
	if rj != nil {
		return nil, rj
	}
	if o.UnbondingDelayBlocks < s.params.Market.MinUnbondingDelayBlocks {
		return nil, reject(ledgerv1.Code_CODE_UNBONDING_TOO_SHORT, "unbonding delay %d blocks, the chain requires at least %d", o.UnbondingDelayBlocks, s.params.Market.MinUnbondingDelayBlocks)
	}
	if rec == nil {
		rec = &ledgerv1.OfferRecord{ModelId: o.ModelId, Provider: bytes.Clone(tx.Signer), Index: index}
	}
	if rj := b.debit(tx.Signer, o.Bond, "bond"); rj != nil {
		return nil, rj
	}
	bonded, rj := add64(rec.Bonded, o.Bond)
	if rj != nil {
		return nil, rj
	}
	rec.Endpoint, rec.Price, rec.Bonded, rec.UnbondingDelayBlocks, rec.UpdatedIndex = o.Endpoint, o.Price, bonded, o.UnbondingDelayBlocks, index
	return func(w *writer) error { return w.putProto(bOffers, []byte(o.ModelId), rec) }, nil
}

func (s *Store) checkUnbond(btx *bolt.Tx, tx *Tx, u *ledgerv1.Unbond, height uint64) (writeFn, *Rejection) {
	_, rec, rj := providerOffer(btx, tx, u.ModelId)
	if rj != nil {
		return nil, rj
	}
	if rec == nil {
		return nil, reject(ledgerv1.Code_CODE_NO_OFFER, "model %q has no offer", trunc(u.ModelId))
	}
	if u.Amount > rec.Bonded {
		return nil, reject(ledgerv1.Code_CODE_INSUFFICIENT_STAKE, "unbond %d: %d bonded", u.Amount, rec.Bonded)
	}
	if free := rec.Bonded - rec.Reserved; u.Amount > free {
		return nil, reject(ledgerv1.Code_CODE_STAKE_RESERVED, "unbond %d: %d of the %d bonded back pending requests, %d are free", u.Amount, rec.Reserved, rec.Bonded, free)
	}
	if len(rec.Unbonding) >= MaxUnbondingEntries {
		return nil, reject(ledgerv1.Code_CODE_INVALID_FIELD, "%d unbonding entries already: withdraw first", len(rec.Unbonding))
	}
	rec.Bonded -= u.Amount
	rec.Unbonding = append(rec.Unbonding, &ledgerv1.UnbondingEntry{Amount: u.Amount, ReleaseHeight: height + rec.UnbondingDelayBlocks})
	return func(w *writer) error { return w.putProto(bOffers, []byte(u.ModelId), rec) }, nil
}

func (s *Store) checkWithdraw(btx *bolt.Tx, tx *Tx, b *book, wd *ledgerv1.Withdraw, height uint64) (writeFn, *Rejection) {
	_, rec, rj := providerOffer(btx, tx, wd.ModelId)
	if rj != nil {
		return nil, rj
	}
	if rec == nil {
		return nil, reject(ledgerv1.Code_CODE_NO_OFFER, "model %q has no offer", trunc(wd.ModelId))
	}
	var due uint64
	var keep []*ledgerv1.UnbondingEntry
	for _, e := range rec.Unbonding {
		if e.ReleaseHeight <= height {
			v, rj := add64(due, e.Amount)
			if rj != nil {
				return nil, rj
			}
			due = v
		} else {
			keep = append(keep, e)
		}
	}
	if due == 0 {
		return nil, reject(ledgerv1.Code_CODE_UNBONDING_NOT_DUE, "no unbonding entry of model %q is released at height %d", trunc(wd.ModelId), height)
	}
	if rj := b.credit(tx.Signer, due); rj != nil {
		return nil, rj
	}
	rec.Unbonding = keep
	return func(w *writer) error { return w.putProto(bOffers, []byte(wd.ModelId), rec) }, nil
}

// ----- escrow: receipts, reveals, proofs, verdicts -----

// lockEscrow runs with a receipt (checkReceipt): for a model with an offer
// the price the client signed must be the offer's, the client's balance
// pays it into the request's escrow, and the offer reserves the request's
// collateral from its free stake. A model without an offer takes unpriced
// receipts only.
func (s *Store) lockEscrow(btx *bolt.Tx, b *book, r *ledgerv1.InferenceReceipt, key []byte, provider []byte, deadline, index, height uint64) (writeFn, *Rejection) {
	o, rj := getOffer(btx, r.ModelId)
	if rj != nil {
		return nil, rj
	}
	if o == nil {
		if r.Price != 0 {
			return nil, reject(ledgerv1.Code_CODE_NO_OFFER, "a receipt at price %d for model %q, which has no offer", r.Price, trunc(r.ModelId))
		}
		return nil, nil
	}
	p := s.params.Market
	if r.Price != o.Price {
		return nil, reject(ledgerv1.Code_CODE_PRICE_MISMATCH, "the client signed price %d, the offer of %q is %d", r.Price, trunc(r.ModelId), o.Price)
	}
	if o.Bonded < p.MinProviderStake {
		return nil, reject(ledgerv1.Code_CODE_OFFER_INACTIVE, "the offer of %q has %d bonded, the chain requires %d", trunc(r.ModelId), o.Bonded, p.MinProviderStake)
	}
	coll, rj := p.collateral(r.Price)
	if rj != nil {
		return nil, rj
	}
	if free := o.Bonded - o.Reserved; free < coll {
		return nil, reject(ledgerv1.Code_CODE_INSUFFICIENT_STAKE, "the request needs %d of collateral, the offer of %q has %d free", coll, trunc(r.ModelId), free)
	}
	if rj := b.debit(r.ClientKey, r.Price, "escrow"); rj != nil {
		return nil, rj
	}
	o.Reserved += coll
	o.Receipts++
	e := &ledgerv1.EscrowRecord{
		RequestKey: key, ModelId: r.ModelId, Client: r.ClientKey, Provider: bytes.Clone(provider), Amount: r.Price, Collateral: coll,
		Status: ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED, ReceiptHeight: height, DueHeight: deadline + 1, ReceiptIndex: index,
	}
	return func(w *writer) error {
		return errors.Join(w.putProto(bEscrows, key, e), w.put(bDue, dueKey(e.DueHeight, key), []byte{1}),
			w.putProto(bOffers, []byte(r.ModelId), o))
	}, nil
}

// moveDue reschedules an escrow's settlement.
func moveDue(w *writer, e *ledgerv1.EscrowRecord, due uint64) error {
	if err := w.del(bDue, dueKey(e.DueHeight, e.RequestKey)); err != nil {
		return err
	}
	e.DueHeight = due
	if due == 0 {
		return nil
	}
	return w.put(bDue, dueKey(due, e.RequestKey), []byte{1})
}

// marketRevealed runs with a reveal (checkReveal): an escrow that is
// already settled (its reveal deadline passed and the provider was paid)
// takes no reveal, and the proof deadline moves with the reveal.
func (s *Store) marketRevealed(btx *bolt.Tx, key []byte, deadline uint64) (writeFn, *Rejection) {
	e, rj := getEscrow(btx, key)
	if rj != nil || e == nil {
		return nil, rj
	}
	if e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED {
		return nil, reject(ledgerv1.Code_CODE_ESCROW_SETTLED, "the escrow of request %x is %s", key[:8], e.Status)
	}
	e.Revealed = true
	return func(w *writer) error { return errors.Join(moveDue(w, e, deadline+1), w.putProto(bEscrows, key, e)) }, nil
}

// marketProven runs with a proof (checkProof): each covered escrow still
// waiting opens its dispute window; the provider is paid when it ends.
func (s *Store) marketProven(btx *bolt.Tx, recs []*ledgerv1.RequestRecord, modelID string, height uint64) (writeFn, *Rejection) {
	var escrows []*ledgerv1.EscrowRecord
	for _, r := range recs {
		e, rj := getEscrow(btx, r.RequestKey)
		if rj != nil {
			return nil, rj
		}
		if e != nil && e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED {
			escrows = append(escrows, e)
		}
	}
	if len(escrows) == 0 {
		return nil, nil
	}
	o, rj := getOffer(btx, modelID)
	if rj != nil || o == nil {
		return nil, firstRejection(rj, reject(ledgerv1.Code_CODE_MALFORMED, "escrows of model %q without an offer", trunc(modelID)))
	}
	o.Proven += uint64(len(escrows))
	payout := height + s.params.Market.DisputeWindowBlocks + 1
	return func(w *writer) error {
		for _, e := range escrows {
			e.Status = ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN
			if err := errors.Join(moveDue(w, e, payout), w.putProto(bEscrows, e.RequestKey, e)); err != nil {
				return err
			}
		}
		return w.putProto(bOffers, []byte(modelID), o)
	}, nil
}

// marketVerdict runs with a verdict (checkVerdict): a client that accepts
// a proven request waives its dispute, and the provider is paid at once.
func (s *Store) marketVerdict(btx *bolt.Tx, b *book, key []byte, accept bool, height uint64) (writeFn, *Rejection) {
	e, rj := getEscrow(btx, key)
	if rj != nil || e == nil || !accept || e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN {
		return nil, rj
	}
	o, rj := getOffer(btx, e.ModelId)
	if rj != nil || o == nil {
		return nil, firstRejection(rj, reject(ledgerv1.Code_CODE_MALFORMED, "escrow of model %q without an offer", trunc(e.ModelId)))
	}
	if rj := s.pay(b, e, o, height); rj != nil {
		return nil, rj
	}
	return func(w *writer) error {
		return errors.Join(moveDue(w, e, 0), w.putProto(bEscrows, key, e), w.putProto(bOffers, []byte(e.ModelId), o))
	}, nil
}

// pay settles an escrow in the provider's favour: the price less the
// validators' share to the provider, the share to the pool, the collateral
// released.
func (s *Store) pay(b *book, e *ledgerv1.EscrowRecord, o *ledgerv1.OfferRecord, height uint64) *Rejection {
	share := bps(e.Amount, s.params.Market.ValidatorShareBps)
	if rj := b.toPool(share); rj != nil {
		return rj
	}
	provider := e.Amount - share
	// A model trained by federated data owners pays them a royalty, by
	// their recorded shares; what rounding leaves stays with the provider.
	if r := s.params.Market.TrainingRoyaltyBps; r > 0 {
		if link, rj := getModelTrainingLink(b.btx, e.ModelId); rj != nil {
			return rj
		} else if link != nil && len(link.OwnerKeys) == len(link.ShareBp) {
			royalty := bps(provider, r)
			for i, k := range link.OwnerKeys {
				part := bps(royalty, link.ShareBp[i])
				if rj := b.credit(k, part); rj != nil {
					return rj
				}
				provider -= part
			}
		}
	}
	if rj := b.credit(e.Provider, provider); rj != nil {
		return rj
	}
	o.Reserved -= min(o.Reserved, e.Collateral)
	o.Paid++
	o.Earned += provider
	e.Status, e.SettleHeight = ledgerv1.EscrowStatus_ESCROW_STATUS_PAID, height
	return nil
}

// slash refunds the escrow to its client and slashes amount of the
// offer's stake (never more than the request's collateral, which the offer
// reserved for it at the receipt and could not unbond since): part to the
// client, the rest burned.
func (s *Store) slash(b *book, e *ledgerv1.EscrowRecord, o *ledgerv1.OfferRecord, amount uint64, status ledgerv1.EscrowStatus, height uint64) *Rejection {
	amount = min(amount, e.Collateral, o.Bonded)
	toClient := bps(amount, s.params.Market.SlashToClientBps)
	refund, rj := add64(e.Amount, toClient)
	if rj != nil {
		return rj
	}
	if rj := firstRejection(b.credit(e.Client, refund), b.burn(amount-toClient)); rj != nil {
		return rj
	}
	o.Bonded -= amount
	o.Reserved -= min(o.Reserved, e.Collateral)
	o.Slashed += amount
	e.Status, e.SettleHeight, e.Slashed, e.ToClient = status, height, amount, toClient
	return nil
}

// beginMarket settles, at the start of every block, the escrows due at its
// height: a revealed request with no valid proof by its deadline is
// refunded and its provider slashed (verifiable absence: every node sees
// the same deadline pass); a request never revealed by its deadline is
// paid (the client took the answer and did not let it be checked); a
// proven request whose dispute window closed is paid.
func (b *Block) beginMarket() error {
	c := b.tx.Bucket(bDue).Cursor()
	var due [][]byte
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k[:8]) <= b.height; k, _ = c.Next() {
		due = append(due, bytes.Clone(k))
	}
	if len(due) == 0 {
		return nil
	}
	w := &writer{tx: b.tx, h: b.writes, n: &b.nwrite}
	bk := newBook(b.tx)
	offers := map[string]*ledgerv1.OfferRecord{}
	var order []string
	for _, k := range due {
		if err := w.del(bDue, k); err != nil {
			return err
		}
		e, rj := getEscrow(b.tx, k[8:])
		if rj != nil {
			return rj
		}
		if e == nil || e.DueHeight != binary.BigEndian.Uint64(k[:8]) {
			continue // rescheduled or settled since
		}
		o, ok := offers[e.ModelId]
		if !ok {
			if o, rj = getOffer(b.tx, e.ModelId); rj != nil || o == nil {
				return firstRejection(rj, reject(ledgerv1.Code_CODE_MALFORMED, "escrow of model %q without an offer", trunc(e.ModelId)))
			}
			offers[e.ModelId] = o
			order = append(order, e.ModelId)
		}
		switch {
		case e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED && e.Revealed:
			o.Missed++
			rj = b.s.slash(bk, e, o, bps(e.Collateral, b.s.params.Market.MissSlashBps), ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_MISSED, b.height)
		case e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED, e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN:
			rj = b.s.pay(bk, e, o, b.height)
		default:
			continue
		}
		if rj != nil {
			return rj
		}
		e.DueHeight = 0
		if err := w.putProto(bEscrows, e.RequestKey, e); err != nil {
			return err
		}
	}
	if err := bk.write(w); err != nil {
		return err
	}
	for _, id := range order {
		if err := w.putProto(bOffers, []byte(id), offers[id]); err != nil {
			return err
		}
	}
	return nil
}

// ----- disputes -----

// DisputeEvidence is what a dispute verifier checks: the dispute's
// evidence and, from the ledger's state, what the receipt, the reveal, the
// proof and the registration say about the request.
type DisputeEvidence struct {
	Spec           []byte // the registered spec (circuits.Spec canonical text)
	KeysDigest     []byte // SHA-256 of the key bundle the receipt names
	Seed           []byte
	Parameters     []byte // canonical he.ParametersLiteral
	GaloisElements []uint64
	Input, Output  []byte // ciphertexts (their digests are the receipt's)
	NumBlocks      int
	Positions      []uint32  // block of each revealed challenge
	Challenges     [][]byte  // the revealed challenge images
	Proven         [][]int64 // the proven outputs, one row per challenge
	OutputFrac     int       // registered: scores are integers / 2^OutputFrac
	Tolerance      int64     // registered, integer score units
}

// DisputeVerifier checks fraud proofs. The ledger does not import the HE
// library: ledger/heverify implements this with package he. CheckDispute
// returns CODE_OK when fraud is proven (a challenge block decrypts to scores
// that differ from the proven ones by more than the tolerance, under the
// key the receipt names, on an input that holds the revealed challenges),
// and otherwise the outcome code saying why not (CODE_DISPUTE_*). It must be
// a deterministic function of its argument (a consensus rule) and safe for
// concurrent use.
type DisputeVerifier interface {
	CheckDispute(e *DisputeEvidence) (ledgerv1.Code, string)
}

// disputeCache remembers dispute outcomes by the hash of their evidence,
// so that CheckTx, ProcessProposal and FinalizeBlock (or the embedded
// driver's parallel pre-check and its apply) check a dispute once.
type disputeCache struct {
	v       DisputeVerifier
	results sync.Map // [32]byte -> disputeResult
}

type disputeResult struct {
	code   ledgerv1.Code
	detail string
}

func (c *disputeCache) check(e *DisputeEvidence) (ledgerv1.Code, string) {
	k := evidenceHash(e)
	if r, ok := c.results.Load(k); ok {
		return r.(disputeResult).code, r.(disputeResult).detail
	}
	code, detail := c.v.CheckDispute(e)
	c.results.Store(k, disputeResult{code, detail})
	return code, detail
}

func evidenceHash(e *DisputeEvidence) [32]byte {
	h := sha256.New()
	for _, b := range [][]byte{e.Spec, e.KeysDigest, e.Seed, e.Parameters, e.Input, e.Output} {
		writeLP(h, b)
	}
	var n [8]byte
	for _, v := range e.GaloisElements {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.NumBlocks))
	h.Write(n[:])
	for i, p := range e.Positions {
		binary.BigEndian.PutUint64(n[:], uint64(p))
		h.Write(n[:])
		if i < len(e.Challenges) {
			writeLP(h, e.Challenges[i])
		}
	}
	for _, row := range e.Proven {
		for _, v := range row {
			binary.BigEndian.PutUint64(n[:], uint64(v))
			h.Write(n[:])
		}
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.OutputFrac))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.Tolerance))
	h.Write(n[:])
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// registeredSpec reads a model's spec from its RegisterModel transaction in
// the log.
func registeredSpec(btx *bolt.Tx, m *ledgerv1.ModelRecord) ([]byte, *Rejection) {
	raw := btx.Bucket(bTxs).Get(u64(m.Index))
	var stx ledgerv1.SignedTx
	var body ledgerv1.TxBody
	if raw == nil || proto.Unmarshal(raw, &stx) != nil || proto.Unmarshal(stx.Body, &body) != nil || body.GetRegisterModel() == nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "the registration of model %q (entry %d) is missing or damaged", trunc(m.ModelId), m.Index)
	}
	return body.GetRegisterModel().GetSpec(), nil
}

// disputeEvidence gathers, from the state, what the dispute is checked
// against.
func (s *Store) disputeEvidence(btx *bolt.Tx, d *ledgerv1.Dispute, rec *ledgerv1.RequestRecord, key []byte) (*DisputeEvidence, *Rejection) {
	m, rj := getModel(btx, d.ModelId)
	if rj != nil {
		return nil, rj
	}
	spec, rj := registeredSpec(btx, m)
	if rj != nil {
		return nil, rj
	}
	blob := get(btx, bReveals, key)
	if len(blob) != int(rec.NumChallenges)*ChallengeImageBytes || len(rec.Positions) != int(rec.NumChallenges) {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored reveal of %x is damaged", key[:8])
	}
	per := int(m.OutputsPerChallenge)
	if len(rec.Outputs) != int(rec.NumChallenges)*per {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "stored outputs of %x are damaged", key[:8])
	}
	e := &DisputeEvidence{
		Spec: spec, KeysDigest: rec.KeysDigest, Seed: d.SessionSeed, Parameters: d.CkksParameters, GaloisElements: d.GaloisElements,
		Input: d.InputCiphertext, Output: d.OutputCiphertext, NumBlocks: int(rec.NumBlocks), Positions: rec.Positions,
		OutputFrac: int(m.OutputFrac), Tolerance: m.Tolerance,
	}
	for i := 0; i < int(rec.NumChallenges); i++ {
		e.Challenges = append(e.Challenges, bytes.Clone(blob[i*ChallengeImageBytes:(i+1)*ChallengeImageBytes]))
		e.Proven = append(e.Proven, rec.Outputs[i*per:(i+1)*per])
	}
	return e, nil
}

// disputable finds the request and escrow a dispute is about, and refuses
// a dispute that cannot be judged: not the client's, nothing at stake, no
// proof, the window closed, or ciphertexts other than the receipt's.
func (s *Store) disputable(btx *bolt.Tx, tx *Tx, d *ledgerv1.Dispute, height uint64) ([]byte, *ledgerv1.RequestRecord, *ledgerv1.EscrowRecord, *Rejection) {
	key, rec, rj := requestOf(btx, d.ModelId, tx.Signer, d.RequestId)
	if rj != nil {
		return nil, nil, nil, rj
	}
	e, rj := getEscrow(btx, key)
	if rj != nil {
		return nil, nil, nil, rj
	}
	fail := func(rj *Rejection) ([]byte, *ledgerv1.RequestRecord, *ledgerv1.EscrowRecord, *Rejection) {
		return nil, nil, nil, rj
	}
	switch {
	case e == nil:
		return fail(reject(ledgerv1.Code_CODE_NO_ESCROW, "request %q paid nothing: there is no stake to dispute", trunc(d.RequestId)))
	case e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED || rec.Status != ledgerv1.RequestStatus_REQUEST_STATUS_PROVEN:
		return fail(reject(ledgerv1.Code_CODE_DISPUTE_NOT_PROVEN, "request %q has no proof to dispute", trunc(d.RequestId)))
	case e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_PAID:
		return fail(reject(ledgerv1.Code_CODE_DISPUTE_WINDOW_CLOSED, "request %q was paid at height %d: its dispute window is closed", trunc(d.RequestId), e.SettleHeight))
	case e.Status != ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN:
		return fail(reject(ledgerv1.Code_CODE_ESCROW_SETTLED, "the escrow of request %q is %s", trunc(d.RequestId), e.Status))
	case height >= e.DueHeight:
		return fail(reject(ledgerv1.Code_CODE_DISPUTE_WINDOW_CLOSED, "the dispute window of request %q closed at height %d", trunc(d.RequestId), e.DueHeight-1))
	}
	in, out := sha256.Sum256(d.InputCiphertext), sha256.Sum256(d.OutputCiphertext)
	if !bytes.Equal(in[:], rec.InputDigest) || !bytes.Equal(out[:], rec.OutputDigest) {
		return fail(reject(ledgerv1.Code_CODE_EVIDENCE_MISMATCH, "the ciphertexts are not the ones receipt %d names", rec.ReceiptIndex))
	}
	return key, rec, e, nil
}

// checkDispute judges a dispute. The client must hold the dispute bond
// (beyond the fee). If fraud is proven the escrow is refunded and the
// request's whole collateral slashed (part to the client); otherwise the
// bond goes to the provider, which is paid at once. Either way the dispute
// is recorded with its outcome: the transaction is accepted, so that a
// failed dispute costs what it says.
func (s *Store) checkDispute(btx *bolt.Tx, tx *Tx, b *book, d *ledgerv1.Dispute, index, height uint64) (writeFn, *Rejection) {
	if s.disputes == nil {
		return nil, reject(ledgerv1.Code_CODE_DISPUTES_UNSUPPORTED, "this node checks no disputes")
	}
	key, rec, e, rj := s.disputable(btx, tx, d, height)
	if rj != nil {
		return nil, rj
	}
	bond := s.params.Market.DisputeBond
	if rj := b.debit(tx.Signer, bond, "dispute bond"); rj != nil {
		return nil, rj
	}
	ev, rj := s.disputeEvidence(btx, d, rec, key)
	if rj != nil {
		return nil, rj
	}
	o, rj := getOffer(btx, d.ModelId)
	if rj != nil || o == nil {
		return nil, firstRejection(rj, reject(ledgerv1.Code_CODE_MALFORMED, "escrow of model %q without an offer", trunc(d.ModelId)))
	}
	code, _ := s.disputes.check(ev)
	// The record keeps the outcome code, not the verifier's text: the code
	// is a consensus rule, the wording is not (it may quote a library's
	// error), and the state hash must not depend on it.
	dr := &ledgerv1.DisputeRecord{RequestKey: key, ModelId: d.ModelId, Client: bytes.Clone(tx.Signer), Index: index, Height: height, Outcome: code}
	if code == ledgerv1.Code_CODE_OK {
		if rj := b.credit(tx.Signer, bond); rj != nil { // the bond comes back
			return nil, rj
		}
		o.Frauds++
		if rj := s.slash(b, e, o, e.Collateral, ledgerv1.EscrowStatus_ESCROW_STATUS_REFUNDED_FRAUD, height); rj != nil {
			return nil, rj
		}
		dr.Slashed, dr.ToClient = e.Slashed, e.ToClient
	} else {
		if rj := b.credit(e.Provider, bond); rj != nil {
			return nil, rj
		}
		o.DisputesWon++
		if rj := s.pay(b, e, o, height); rj != nil {
			return nil, rj
		}
		dr.Bond = bond
	}
	e.DisputeIndex = index
	return func(w *writer) error {
		return errors.Join(moveDue(w, e, 0), w.putProto(bEscrows, key, e), w.putProto(bOffers, []byte(d.ModelId), o),
			w.putProto(bDisputes, u64(index), dr))
	}, nil
}

// canPay reports whether tx's signer holds its fee in the committed state:
// the embedded driver's parallel pre-checks (Prewarm) skip what the apply
// path would refuse as unfunded, so an unfunded signer costs no proof
// verification or dispute check.
func (s *Store) canPay(tx *Tx) bool {
	fee, rj := s.params.Market.Fee(tx.Body, len(tx.Raw))
	if rj != nil {
		return false
	}
	if fee == 0 {
		return true
	}
	ok := false
	_ = s.view(func(btx *bolt.Tx) error {
		ok = balanceOf(btx, tx.Signer) >= fee
		return nil
	})
	return ok
}

// prewarmDispute checks a dispute against the committed state so that its
// outcome is cached before the block applies it (the embedded driver runs
// it on every core).
func (s *Store) prewarmDispute(tx *Tx) bool {
	d, ok := tx.Body.Tx.(*ledgerv1.TxBody_Dispute)
	if !ok {
		return false
	}
	if s.disputes == nil {
		return true
	}
	_ = s.view(func(btx *bolt.Tx) error {
		st, err := readState(btx)
		if err != nil {
			return err
		}
		key, rec, _, rj := s.disputable(btx, tx, d.Dispute, st.height+1)
		if rj != nil {
			return nil
		}
		if ev, rj := s.disputeEvidence(btx, d.Dispute, rec, key); rj == nil {
			s.disputes.check(ev)
		}
		return nil
	})
	return true
}

// ----- queries -----

// MarketAPI is the market's read side: every Store-based node and the
// remote client (query.Client) implement it.
type MarketAPI interface {
	Account(ctx context.Context, key []byte) (*ledgerv1.AccountRecord, error)
	Accounts(ctx context.Context, limit int, after []byte) ([]*ledgerv1.AccountRecord, error)
	Offer(ctx context.Context, modelID string) (*ledgerv1.OfferRecord, error)
	Offers(ctx context.Context) ([]*ledgerv1.OfferRecord, error)
	Escrow(ctx context.Context, requestKey []byte) (*ledgerv1.EscrowRecord, error)
	Escrows(ctx context.Context, limit int) ([]*ledgerv1.EscrowRecord, error)
	Disputes(ctx context.Context, limit int) ([]*ledgerv1.DisputeRecord, error)
	Supply(ctx context.Context) (*ledgerv1.SupplyRecord, error)
}

var _ MarketAPI = (*Store)(nil)

// Account returns an account's balance (zero for an account never
// credited).
func (s *Store) Account(_ context.Context, key []byte) (a *ledgerv1.AccountRecord, err error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("account of %d bytes, want %d: %w", len(key), ed25519.PublicKeySize, ErrNotFound)
	}
	err = s.view(func(btx *bolt.Tx) error {
		a = &ledgerv1.AccountRecord{Account: bytes.Clone(key), Balance: balanceOf(btx, key)}
		return nil
	})
	return a, err
}

// Accounts lists accounts in key order after the given key.
func (s *Store) Accounts(_ context.Context, limit int, after []byte) (out []*ledgerv1.AccountRecord, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	err = s.view(func(btx *bolt.Tx) error {
		c := btx.Bucket(bAccounts).Cursor()
		k, _ := c.First()
		if after != nil {
			if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			out = append(out, &ledgerv1.AccountRecord{Account: bytes.Clone(k), Balance: balanceOf(btx, k)})
		}
		return nil
	})
	return out, err
}

// Offer returns a model's offer.
func (s *Store) Offer(_ context.Context, modelID string) (o *ledgerv1.OfferRecord, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		var rj *Rejection
		if o, rj = getOffer(btx, modelID); rj != nil {
			return rj
		}
		if o == nil {
			return fmt.Errorf("offer of %q: %w", modelID, ErrNotFound)
		}
		return nil
	})
	return o, err
}

// Offers lists every offer by model id.
func (s *Store) Offers(context.Context) (out []*ledgerv1.OfferRecord, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		return btx.Bucket(bOffers).ForEach(func(k, _ []byte) error {
			o, rj := getOffer(btx, string(k))
			if rj != nil {
				return rj
			}
			out = append(out, o)
			return nil
		})
	})
	return out, err
}

// Escrow returns a request's escrow.
func (s *Store) Escrow(_ context.Context, key []byte) (e *ledgerv1.EscrowRecord, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		var rj *Rejection
		if e, rj = getEscrow(btx, key); rj != nil {
			return rj
		}
		if e == nil {
			return fmt.Errorf("escrow of %x: %w", key[:min(8, len(key))], ErrNotFound)
		}
		return nil
	})
	return e, err
}

// Escrows lists the escrows of the newest receipts first.
func (s *Store) Escrows(_ context.Context, limit int) (out []*ledgerv1.EscrowRecord, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	err = s.view(func(btx *bolt.Tx) error {
		c := btx.Bucket(bReceipts).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			e, rj := getEscrow(btx, unseal(v))
			if rj != nil {
				return rj
			}
			if e != nil {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// Disputes lists disputes, newest first.
func (s *Store) Disputes(_ context.Context, limit int) (out []*ledgerv1.DisputeRecord, err error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	err = s.view(func(btx *bolt.Tx) error {
		c := btx.Bucket(bDisputes).Cursor()
		for k, _ := c.Last(); k != nil && len(out) < limit; k, _ = c.Prev() {
			d := &ledgerv1.DisputeRecord{}
			if _, err := getProto(btx, bDisputes, k, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Supply returns the supply record.
func (s *Store) Supply(context.Context) (r *ledgerv1.SupplyRecord, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		r = readSupply(btx)
		return nil
	})
	return r, err
}

// SupplyAudit is a count of every unit on the chain.
type SupplyAudit struct {
	Genesis, Balances, Bonded, Unbonding, Escrowed, Pool, Burned uint64
}

// Accounted is everything the audit found (it must equal Genesis).
func (a SupplyAudit) Accounted() uint64 {
	return a.Balances + a.Bonded + a.Unbonding + a.Escrowed + a.Pool + a.Burned
}

// AuditSupply counts every unit in the committed state: balances, offers'
// bonded and unbonding stake, locked escrows (LOCKED and PROVEN), the pool
// and the burned amount. Conservation (the invariant property tests check
// after every block) is Accounted() == Genesis: fees move to the pool,
// payments out of escrows, slashes to clients or the burned count; nothing
// else creates or destroys a unit.
func (s *Store) AuditSupply() (a SupplyAudit, err error) {
	err = s.view(func(btx *bolt.Tx) error {
		sum := func(dst *uint64, v uint64) error {
			var carry uint64
			if *dst, carry = bits.Add64(*dst, v, 0); carry != 0 {
				return errors.New("supply audit overflows")
			}
			return nil
		}
		sup := readSupply(btx)
		a.Genesis, a.Pool, a.Burned = sup.Genesis, sup.Pool, sup.Burned
		if err := btx.Bucket(bAccounts).ForEach(func(k, _ []byte) error { return sum(&a.Balances, balanceOf(btx, k)) }); err != nil {
			return err
		}
		if err := btx.Bucket(bOffers).ForEach(func(k, _ []byte) error {
			o, rj := getOffer(btx, string(k))
			if rj != nil {
				return rj
			}
			if o.Reserved > o.Bonded {
				return fmt.Errorf("offer %q reserves %d of %d bonded", o.ModelId, o.Reserved, o.Bonded)
			}
			for _, u := range o.Unbonding {
				if err := sum(&a.Unbonding, u.Amount); err != nil {
					return err
				}
			}
			return sum(&a.Bonded, o.Bonded)
		}); err != nil {
			return err
		}
		return btx.Bucket(bEscrows).ForEach(func(k, _ []byte) error {
			e, rj := getEscrow(btx, k)
			if rj != nil {
				return rj
			}
			if e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_LOCKED || e.Status == ledgerv1.EscrowStatus_ESCROW_STATUS_PROVEN {
				return sum(&a.Escrowed, e.Amount)
			}
			return nil
		})
	})
	if err == nil && a.Accounted() != a.Genesis {
		err = fmt.Errorf("supply: %d at genesis, %d accounted for (%+v)", a.Genesis, a.Accounted(), a)
	}
	return a, err
}

// describeMarket summarises a market transaction (rejections.go).
func describeMarket(b *ledgerv1.TxBody) (kind, summary string) {
	switch t := b.Tx.(type) {
	case *ledgerv1.TxBody_Transfer:
		return "Transfer", fmt.Sprintf("%d to %x", t.Transfer.Amount, t.Transfer.To[:min(8, len(t.Transfer.To))])
	case *ledgerv1.TxBody_ProviderOffer:
		o := t.ProviderOffer
		return "ProviderOffer", fmt.Sprintf("model %s at %d per image, bond %d, endpoint %s", trunc(o.ModelId), o.Price, o.Bond, trunc(o.Endpoint))
	case *ledgerv1.TxBody_Unbond:
		return "Unbond", fmt.Sprintf("%d of model %s", t.Unbond.Amount, trunc(t.Unbond.ModelId))
	case *ledgerv1.TxBody_Withdraw:
		return "Withdraw", fmt.Sprintf("model %s", trunc(t.Withdraw.ModelId))
	case *ledgerv1.TxBody_Dispute:
		d := t.Dispute
		return "Dispute", fmt.Sprintf("request %s of model %s, %d+%d bytes of ciphertext", trunc(d.RequestId), trunc(d.ModelId), len(d.InputCiphertext), len(d.OutputCiphertext))
	}
	return "unknown", ""
}
