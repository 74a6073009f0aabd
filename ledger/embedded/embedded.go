package embedded

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// Config configures a Node.
type Config struct {
	Path     string // bbolt database file
	ChainID  string
	Verifier ledger.ProofVerifier
	// Disputes checks fraud proofs (ledger/heverify); nil refuses disputes.
	Disputes ledger.DisputeVerifier
	// Ceremony verifies setup contributions (ledger/zkverify.NewCeremony);
	// nil refuses them.
	Ceremony   ledger.CeremonyVerifier
	SigningKey ed25519.PrivateKey // signs checkpoints
	// MaxBlockTxs bounds the transactions in one block (default 1024).
	MaxBlockTxs int
	// Workers verify transactions in parallel (default GOMAXPROCS).
	Workers int
	// Params are the chain's consensus parameters (zero: the stored ones,
	// or ledger.DefaultParams for a new ledger).
	Params ledger.Params
	// BlockInterval, when positive, cuts exactly one block per interval
	// (empty when nothing was submitted), so that heights measure time and
	// deadlines in blocks pass neither early (nobody can pump the height by
	// submitting) nor never (an idle ledger advances), as with CometBFT.
	// Zero cuts a block whenever transactions are waiting: fastest, but
	// then heights are not a clock, and deadlines mean nothing; use it for
	// throughput benchmarks only.
	BlockInterval time.Duration
}

// Node is an embedded single-node ledger. It implements ledger.API; the
// read methods come from the embedded *ledger.Store.
type Node struct {
	*ledger.Store
	cfg   Config
	sem   chan struct{} // bounds parallel pre-verification
	queue chan *group
	stop  chan struct{}
	done  chan struct{}

	rejected *ledger.RejectionLog

	mu     sync.Mutex
	failed error // set when a block could not be committed
	closed bool
}

// group is transactions submitted together; they go into one block in order.
type group struct {
	txs  []*item
	resp chan error // closed when every item has a result
}

type item struct {
	raw []byte
	tx  *ledger.Tx
	rj  *ledger.Rejection
	res *ledgerv1.SubmitResponse
}

var _ ledger.API = (*Node)(nil)

// Open opens (or creates) the database and starts the block loop. A damaged
// database is an error wrapping ledger.ErrCorrupt.
func Open(cfg Config) (*Node, error) {
	if cfg.MaxBlockTxs <= 0 {
		cfg.MaxBlockTxs = 1024
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	s, err := ledger.Open(cfg.Path, ledger.Options{ChainID: cfg.ChainID, Verifier: cfg.Verifier, Disputes: cfg.Disputes, Ceremony: cfg.Ceremony, SigningKey: cfg.SigningKey, Params: cfg.Params})
	if err != nil {
		return nil, err
	}
	n := &Node{
		Store: s, cfg: cfg, sem: make(chan struct{}, cfg.Workers), rejected: ledger.NewRejectionLog(0),
		queue: make(chan *group, 4*cfg.MaxBlockTxs), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go n.loop()
	return n, nil
}

// Close stops the block loop (after the current block) and closes the store.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	<-n.done
	return n.Store.Close()
}

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("ledger node is closed")

// Submit applies one transaction and waits until its block is durable. A
// rejected transaction returns its response and a *ledger.Rejection.
func (n *Node) Submit(ctx context.Context, tx []byte) (*ledgerv1.SubmitResponse, error) {
	rs, err := n.SubmitBatch(ctx, [][]byte{tx})
	if err != nil {
		return nil, err
	}
	return rs[0], responseErr(rs[0])
}

func responseErr(r *ledgerv1.SubmitResponse) error {
	if r.Code == ledgerv1.Code_CODE_OK {
		return nil
	}
	return &ledger.Rejection{Code: r.Code, Reason: r.Reason, Index: r.Index}
}

// SubmitBatch applies txs in order, in one block when they fit, and waits
// until they are durable. Rejections are reported per transaction in the
// responses; the error is for the node itself (closed, failed, ctx).
func (n *Node) SubmitBatch(ctx context.Context, txs [][]byte) ([]*ledgerv1.SubmitResponse, error) {
	if err := n.health(); err != nil {
		return nil, err
	}
	g := &group{resp: make(chan error, 1)}
	for _, raw := range txs {
		g.txs = append(g.txs, &item{raw: raw})
	}
	// Stateless checks and proof verification, in parallel, bounded by the
	// worker semaphore so concurrent submitters share the cores.
	var wg sync.WaitGroup
	for _, it := range g.txs {
		select {
		case n.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-n.sem; wg.Done() }()
			it.tx, it.rj = ledger.DecodeTx(n.ChainID(), it.raw)
			if it.rj == nil {
				n.Prewarm(it.tx)
			}
		}()
	}
	wg.Wait()
	select {
	case n.queue <- g:
	case <-n.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued the group will be applied; waiting for it is not
	// cancellable, or the caller could miss that its transaction landed.
	// If the loop has exited (Close), a group it never saw is not applied.
	var err error
	select {
	case err = <-g.resp:
	case <-n.done:
		select {
		case err = <-g.resp:
		default:
			err = ErrClosed
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]*ledgerv1.SubmitResponse, len(g.txs))
	for i, it := range g.txs {
		out[i] = it.res
	}
	return out, nil
}

func (n *Node) health() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	return n.failed
}

func (n *Node) loop() {
	defer close(n.done)
	// With a block interval, blocks are cut by the clock only: one block
	// per interval, holding whatever was submitted meanwhile (up to the
	// block size), so that heights measure time and nobody can advance
	// them (and so pass deadlines early) by submitting many transactions.
	// Without one, a block is cut as soon as something is waiting.
	var tick <-chan time.Time
	if n.cfg.BlockInterval > 0 {
		t := time.NewTicker(n.cfg.BlockInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var batch []*group
		size := 0
		queue := n.queue
		if tick != nil {
			queue = nil // wait for the clock
		}
		select {
		case g := <-queue:
			batch, size = append(batch, g), len(g.txs)
		case <-tick:
		case <-n.stop:
			n.drain(ErrClosed)
			return
		}
		// Take whatever else is waiting, up to the block size: under load
		// blocks grow and fsyncs are shared; when idle a block is one tx.
	more:
		for size < n.cfg.MaxBlockTxs {
			select {
			case g := <-n.queue:
				batch, size = append(batch, g), size+len(g.txs)
			default:
				break more
			}
		}
		err := n.applyBlock(batch, tick != nil)
		if err != nil {
			n.mu.Lock()
			n.failed = fmt.Errorf("ledger node stopped accepting transactions: %w", err)
			n.mu.Unlock()
		}
		for _, g := range batch {
			g.resp <- err
		}
		if err != nil {
			// Failed: answer every later submission with the error until
			// Close, so nobody waits forever.
			for {
				select {
				case g := <-n.queue:
					g.resp <- err
				case <-n.stop:
					n.drain(err)
					return
				}
			}
		}
	}
}

func (n *Node) drain(err error) {
	for {
		select {
		case g := <-n.queue:
			g.resp <- err
		default:
			return
		}
	}
}

// applyBlock applies the groups as one block. A block that accepted
// nothing is dropped (no fsync) unless keepEmpty, when heights must advance
// with time.
func (n *Node) applyBlock(batch []*group, keepEmpty bool) error {
	height, _, _, err := n.Head()
	if err != nil {
		return err
	}
	b, err := n.Begin(height + 1)
	if err != nil {
		return err
	}
	accepted := 0
	for _, g := range batch {
		for _, it := range g.txs {
			var r ledger.Result
			if it.rj != nil {
				h := ledger.TxHash(it.raw)
				r = ledger.Result{Code: it.rj.Code, Reason: it.rj.Reason, TxHash: h, Height: b.Height(), Index: it.rj.Index}
			} else if r, err = b.ApplyTx(it.tx); err != nil {
				b.Discard()
				return err
			}
			it.res = &ledgerv1.SubmitResponse{Code: r.Code, Reason: r.Reason, TxHash: r.TxHash[:], Index: r.Index, Height: r.Height}
			if r.OK() {
				accepted++
			} else {
				n.rejected.Add(it.raw, r.Code, r.Reason, "submit")
			}
		}
	}
	if accepted == 0 && !keepEmpty {
		b.Discard() // nothing to make durable: no empty block, no fsync
		return nil
	}
	return b.Commit()
}

// Rejections implements ledger.API.
func (n *Node) Rejections(context.Context) ([]*ledgerv1.Rejected, error) {
	return n.rejected.List(), nil
}
