package cometbft

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// App is the ABCI application.
type App struct {
	abci.BaseApplication
	store   *ledger.Store
	workers int

	// mutateProposal lets a test play a malicious proposer.
	mutateProposal func([][]byte) [][]byte

	// proposalsRejected counts ProcessProposal rejections (for tests and
	// operators).
	proposalsRejected atomic.Int64
	rejectedBy        [128]atomic.Int64 // by the code of the offending transaction

	rejected *ledger.RejectionLog

	mu      sync.Mutex
	pending *ledger.Block // from FinalizeBlock to Commit
	results []ledger.Result
	waiters map[[32]byte][]waiter
}

var _ abci.Application = (*App)(nil)

// NewApp wraps an open store.
func NewApp(store *ledger.Store) *App {
	return &App{store: store, workers: runtime.GOMAXPROCS(0), waiters: make(map[[32]byte][]waiter), rejected: ledger.NewRejectionLog(0)}
}

// Store returns the app's store (for queries).
func (a *App) Store() *ledger.Store { return a.store }

// Info tells CometBFT where the app's state is, so it replays the blocks
// the app has not committed (after a crash between FinalizeBlock and
// Commit, or while the node was down).
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	h, _, app, err := a.store.Head()
	if err != nil {
		return nil, err
	}
	resp := &abci.InfoResponse{Data: "veil-ledger", Version: "1", AppVersion: 1, LastBlockHeight: int64(h)}
	if h > 0 {
		resp.LastBlockAppHash = app
	}
	return resp, nil
}

// CheckTx admits a transaction to the mempool if it applies to the
// committed state.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	r := a.store.Check(req.Tx)
	return &abci.CheckTxResponse{Code: uint32(r.Code), Log: r.Reason}, nil
}

// prewarm decodes and verifies the proofs of txs in parallel; the results
// land in the store's verification cache for the sequential pass.
func (a *App) prewarm(txs [][]byte) []*ledger.Tx {
	out := make([]*ledger.Tx, len(txs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, a.workers)
	for i, raw := range txs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if tx, rj := ledger.DecodeTx(a.store.ChainID(), raw); rj == nil {
				out[i] = tx
				a.store.Prewarm(tx)
			}
		}()
	}
	wg.Wait()
	return out
}

// simulate applies txs to a scratch block that is then discarded.
func (a *App) simulate(height int64, txs [][]byte) ([]ledger.Result, error) {
	decoded := a.prewarm(txs)
	b, err := a.store.Begin(uint64(height))
	if err != nil {
		return nil, err
	}
	defer b.Discard()
	res := make([]ledger.Result, len(txs))
	for i, raw := range txs {
		if decoded[i] != nil {
			res[i], err = b.ApplyTx(decoded[i])
		} else {
			res[i], err = b.Apply(raw)
		}
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// PrepareProposal keeps the transactions that apply, in mempool order,
// within the block byte limit.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	res, err := a.simulate(req.Height, req.Txs)
	if err != nil {
		return nil, err
	}
	var keep [][]byte
	var size int64
	for i, r := range res {
		if !r.OK() {
			continue
		}
		if size+int64(len(req.Txs[i]))+16 > req.MaxTxBytes {
			break
		}
		size += int64(len(req.Txs[i])) + 16
		keep = append(keep, req.Txs[i])
	}
	if a.mutateProposal != nil {
		keep = a.mutateProposal(keep)
	}
	return &abci.PrepareProposalResponse{Txs: keep}, nil
}

// ProcessProposal accepts a proposal only if every transaction applies.
func (a *App) ProcessProposal(_ context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	res, err := a.simulate(req.Height, req.Txs)
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		if !r.OK() {
			a.rejected.Add(req.Txs[i], r.Code, r.Reason, fmt.Sprintf("proposal at height %d", req.Height))
			a.proposalsRejected.Add(1)
			if int(r.Code) < len(a.rejectedBy) {
				a.rejectedBy[r.Code].Add(1)
			}
			return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
		}
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// FinalizeBlock applies the decided block. It is deterministic: the same
// block on the same state gives the same results and app hash everywhere.
// A transaction that does not apply (possible only in blocks decided
// before this node's rules saw them, e.g. on replay) is recorded as
// rejected, with its code, and not logged.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	decoded := a.prewarm(req.Txs)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending != nil {
		a.pending.Discard()
		a.pending = nil
	}
	b, err := a.store.Begin(uint64(req.Height))
	if err != nil {
		return nil, err
	}
	out := &abci.FinalizeBlockResponse{}
	results := make([]ledger.Result, len(req.Txs))
	for i, raw := range req.Txs {
		var r ledger.Result
		if decoded[i] != nil {
			r, err = b.ApplyTx(decoded[i])
		} else {
			r, err = b.Apply(raw)
		}
		if err != nil {
			b.Discard()
			return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
		}
		results[i] = r
		if !r.OK() {
			a.rejected.Add(raw, r.Code, r.Reason, fmt.Sprintf("block %d", req.Height))
		}
		er := &abci.ExecTxResult{Code: uint32(r.Code), Log: r.Reason}
		if r.OK() {
			er.Data = binary.BigEndian.AppendUint64(nil, r.Index)
		}
		out.TxResults = append(out.TxResults, er)
	}
	cp, err := b.Finish()
	if err != nil {
		b.Discard()
		return nil, err
	}
	out.AppHash = cp.AppHash
	a.pending, a.results = b, results
	return out, nil
}

// Commit makes the finalized block durable and wakes the submitters
// waiting for its transactions.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		return &abci.CommitResponse{}, nil
	}
	b := a.pending
	a.pending = nil
	if err := b.Commit(); err != nil {
		return nil, err
	}
	for _, r := range a.results {
		for _, w := range a.waiters[r.TxHash] {
			w.ch <- r
		}
		delete(a.waiters, r.TxHash)
	}
	a.results = nil
	if len(a.waiters) > 0 {
		// A waiting transaction that no longer applies (say, another proof
		// for the same request just committed) will be dropped from the
		// mempool by recheck and never committed: tell its submitter now
		// rather than at its deadline.
		pending := make(map[[32]byte][]byte, len(a.waiters))
		for h, ws := range a.waiters {
			pending[h] = ws[0].raw
		}
		go a.recheckWaiters(pending)
	}
	return &abci.CommitResponse{}, nil
}

func (a *App) recheckWaiters(pending map[[32]byte][]byte) {
	for h, raw := range pending {
		r := a.store.Check(raw)
		if r.OK() {
			continue
		}
		a.mu.Lock()
		for _, w := range a.waiters[h] {
			w.ch <- r
		}
		delete(a.waiters, h)
		a.mu.Unlock()
	}
}

type waiter struct {
	ch  chan ledger.Result
	raw []byte
}

// wait registers interest in a transaction's committed result.
func (a *App) wait(raw []byte) (chan ledger.Result, func()) {
	h := ledger.TxHash(raw)
	ch := make(chan ledger.Result, 1)
	a.mu.Lock()
	a.waiters[h] = append(a.waiters[h], waiter{ch: ch, raw: raw})
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		ws := a.waiters[h]
		for i, w := range ws {
			if w.ch == ch {
				a.waiters[h] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(a.waiters[h]) == 0 {
			delete(a.waiters, h)
		}
	}
}

func response(r ledger.Result) *ledgerv1.SubmitResponse {
	return &ledgerv1.SubmitResponse{Code: r.Code, Reason: r.Reason, TxHash: r.TxHash[:], Index: r.Index, Height: r.Height}
}

// ProposalsRejected returns how many proposals this node's ProcessProposal
// rejected, and how many of them because of a transaction with code c.
func (a *App) ProposalsRejected(c ledgerv1.Code) (total, because int64) {
	if int(c) < len(a.rejectedBy) {
		because = a.rejectedBy[c].Load()
	}
	return a.proposalsRejected.Load(), because
}

// Rejections returns the transactions this node rejected recently.
func (a *App) Rejections() []*ledgerv1.Rejected { return a.rejected.List() }
