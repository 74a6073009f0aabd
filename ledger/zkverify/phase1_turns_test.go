package zkverify_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/protocol"
)

// TestPhase1ParticipantsRaceAndRestart plays three validators that start
// at once with no turn order (all Turn 0): all compute a contribution on
// the same accumulator, the ledger takes one and refuses the others as not
// extending the last, and the refused recompute on the new last one, so
// that phase 1 is sealed with exactly one contribution each. A validator
// restarted afterwards (its key in the transcript) does not contribute
// again, and returns the sealed record.
func TestPhase1ParticipantsRaceAndRestart(t *testing.T) {
	node := ceremonyNode(t, 1<<4, 3, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names := []string{"validator a", "validator b", "validator c"}
	outs := make([]*protocol.Phase1Outcome, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = protocol.TakePartInPhase1(ctx, node, protocol.Phase1Turn{
				Signer: ledger.Signer{ChainID: chain, Key: ledgertest.Key(name)}, Attestation: name, Poll: 20 * time.Millisecond,
			})
		}()
	}
	wg.Wait()
	rec, err := node.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Sealed || len(rec.Contributions) != len(names) {
		t.Fatalf("phase 1: sealed %v with %d contributions, want sealed with %d", rec.Sealed, len(rec.Contributions), len(names))
	}
	for i, name := range names {
		if errs[i] != nil {
			t.Fatalf("%s: %v", name, errs[i])
		}
		c := outs[i].Contribution
		if c == nil || !bytes.Equal(outs[i].Sealed.Beacon, rec.Beacon) {
			t.Fatalf("%s: outcome %+v", name, outs[i])
		}
		pos, _, err := protocol.InTranscript(ctx, node, ledger.Phase1ID, c.Hash[:])
		if err != nil || !bytes.Equal(rec.Contributions[pos-1].Contributor, ledgertest.Key(name).Public().(ed25519.PublicKey)) {
			t.Fatalf("%s: its contribution at %d: %v", name, pos, err)
		}
	}
	again, err := protocol.TakePartInPhase1(ctx, node, protocol.Phase1Turn{Signer: ledger.Signer{ChainID: chain, Key: ledgertest.Key(names[0])}, Poll: 20 * time.Millisecond})
	if err != nil || again.Contribution != nil || !again.Sealed.Sealed {
		t.Fatalf("restarted validator: %+v %v", again, err)
	}
	if rec2, _ := node.Ceremony(ctx, ledger.Phase1ID); len(rec2.Contributions) != len(names) {
		t.Fatalf("restart changed the transcript: %d contributions", len(rec2.Contributions))
	}
}

// TestPhase1TurnWaitsThenGoesAhead: a validator whose turn is 2 on a chain
// where nobody before it contributes (they are down) waits TurnWait
// without progress, then contributes, closes and seals by itself.
func TestPhase1TurnWaitsThenGoesAhead(t *testing.T) {
	node := ceremonyNode(t, 1<<4, 1, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	out, err := protocol.TakePartInPhase1(ctx, node, protocol.Phase1Turn{
		Signer: ledger.Signer{ChainID: chain, Key: ledgertest.Key("validator c")}, Turn: 2, TurnWait: 300 * time.Millisecond, Poll: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(t0); waited < 300*time.Millisecond {
		t.Fatalf("contributed after %v, before its turn or TurnWait", waited)
	}
	if out.Contribution == nil || !out.Sealed.Sealed || len(out.Sealed.Contributions) != 1 {
		t.Fatalf("outcome %+v", out)
	}
}

// flaky fails every other Ceremony read with a transport error.
type flaky struct {
	ledger.CeremonyAPI
	calls atomic.Int64
}

func (f *flaky) Ceremony(ctx context.Context, id string) (*ledgerv1.CeremonyRecord, error) {
	if f.calls.Add(1)%2 == 0 {
		return nil, errors.New("connection reset")
	}
	return f.CeremonyAPI.Ceremony(ctx, id)
}

// TestPhase1TransientErrorsAreCountedInARow (the reviewer's case): a
// node that fails every other read never fails maxTransientFailures times
// in a row, so a validator waiting for its turn keeps waiting instead of
// giving up, then contributes when its turn comes.
func TestPhase1TransientErrorsAreCountedInARow(t *testing.T) {
	node := ceremonyNode(t, 1<<4, 2, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &flaky{CeremonyAPI: node}
	done := make(chan error, 1)
	go func() {
		_, err := protocol.TakePartInPhase1(ctx, f, protocol.Phase1Turn{
			Signer: ledger.Signer{ChainID: chain, Key: ledgertest.Key("validator b")}, Turn: 1, TurnWait: time.Hour, Poll: 5 * time.Millisecond,
		})
		done <- err
	}()
	for f.calls.Load() < 300 { // well past 60 errors in all
		select {
		case err := <-done:
			t.Fatalf("gave up while waiting for its turn: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	out, err := protocol.TakePartInPhase1(ctx, node, protocol.Phase1Turn{Signer: ledger.Signer{ChainID: chain, Key: ledgertest.Key("validator a")}, Poll: 5 * time.Millisecond})
	if err != nil || !out.Included {
		t.Fatalf("validator a: %+v %v", out, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("validator b after its turn came: %v", err)
	}
	rec, _ := node.Ceremony(ctx, ledger.Phase1ID)
	if !rec.Sealed || len(rec.Contributions) != 2 {
		t.Fatalf("phase 1: sealed %v with %d contributions", rec.Sealed, len(rec.Contributions))
	}
}
