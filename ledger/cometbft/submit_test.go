package cometbft

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/veil-project/veil/ledger"
)

// awaitCommit answers with the block's result when it comes, with
// ErrTxDropped once the transaction has been seen out of the mempool and
// uncommitted on two polls in a row (one is not enough: a commit may be in
// between), and with the context's error when the caller gives up; it does
// not wait for the context's end after a drop.
func TestAwaitCommit(t *testing.T) {
	const poll = 5 * time.Millisecond
	ctx := context.Background()

	ch := make(chan ledger.Result, 1)
	ch <- ledger.Result{Index: 7}
	if r, err := awaitCommit(ctx, ch, poll, func() bool { return true }); err != nil || r.Index != 7 {
		t.Fatalf("committed: %v %v", r, err)
	}

	// Out of the mempool on every poll: dropped, not the context's error
	// (whose deadline is far).
	long, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if _, err := awaitCommit(long, make(chan ledger.Result), poll, func() bool { return true }); !errors.Is(err, ErrTxDropped) {
		t.Fatalf("dropped: %v, want ErrTxDropped", err)
	}

	// Out, then back (say, seen between a block's commit and its result):
	// not dropped, and the result that comes is returned.
	calls := 0
	ch = make(chan ledger.Result, 1)
	r, err := awaitCommit(ctx, ch, poll, func() bool {
		calls++
		switch calls {
		case 1, 3:
			return true
		case 4:
			ch <- ledger.Result{Index: 9}
		}
		return false
	})
	if err != nil || r.Index != 9 {
		t.Fatalf("out and back: %v %v after %d polls", r, err, calls)
	}

	// Still in the mempool when the caller gives up.
	short, cancel2 := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel2()
	if _, err := awaitCommit(short, make(chan ledger.Result), poll, func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("in the mempool at the deadline: %v", err)
	}
}
