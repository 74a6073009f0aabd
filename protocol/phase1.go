package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// A genesis validator's part in the chain's phase 1 (`veil ledger node` on
// a chain written by `veil ledger testnet --phase1`): each validator
// operator contributes once, through its own node, then any of them closes
// phase 1 once it has enough contributors and seals it with the beacon.
// Every node verifies every contribution before it is accepted, so a
// validator whose node is honest knows that its own randomness is in the
// sealed SRS.

// ContributorKeyFile is the name, in a validator's home, of the ed25519 key
// its operator contributes to the ceremony with (0600; `veil ledger
// testnet` writes it and funds it when the market is on).
const ContributorKeyFile = "contributor.key"

// ContributorKeyPath is the contributor key of the validator whose home is home.
func ContributorKeyPath(home string) string { return filepath.Join(home, ContributorKeyFile) }

// Phase1Funds is what a contributor needs at genesis to pay for one phase-1
// contribution at domain n on a chain with market m (its chunks and the
// contribution transaction, with room for each transaction's envelope),
// four times over: a contribution refused because another one got in
// first (between TakePartInPhase1's last look and its upload) is paid for
// too.
func Phase1Funds(m ledger.MarketParams, n uint64) (uint64, error) {
	const envelope = 1024 // signature, key, chain id, nonce and framing, generously
	size := uint64(mpcsetup.Phase1Size(n, false))
	chunks := (size + ledger.MaxChunkBytes - 1) / ledger.MaxChunkBytes
	chunkFee, rj := m.Fee(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonyChunk{CeremonyChunk: &ledgerv1.CeremonyChunk{}}}, ledger.MaxChunkBytes+envelope)
	if rj != nil {
		return 0, rj
	}
	contribFee, rj := m.Fee(&ledgerv1.TxBody{Tx: &ledgerv1.TxBody_CeremonyContribution{CeremonyContribution: &ledgerv1.CeremonyContribution{}}}, int(chunks*33)+envelope)
	if rj != nil {
		return 0, rj
	}
	return 4 * (chunks*chunkFee + contribFee), nil
}

// Phase1Turn describes one contributor's part in phase 1.
type Phase1Turn struct {
	Signer      ledger.Signer
	Attestation string // recorded with the contribution, e.g. the validator's name
	// Turn is this contributor's place in line (its index among the genesis
	// validators): it contributes once Turn contributions are in, or when
	// no contribution has come in for TurnWait (default 2 minutes: an
	// earlier validator is down or has no key), so that validators started
	// together do not all compute a contribution on the same accumulator,
	// all but one to be refused as not extending the last.
	Turn int
	// Among, if set, are the keys whose contributions count for the turns
	// (the validators' contributor keys): others' do not move the line.
	Among    []ed25519.PublicKey
	TurnWait time.Duration
	Poll     time.Duration // how often to read the ceremony (default 1 s)
	// Progress receives one line per step (optional).
	Progress func(format string, a ...any)
}

// Phase1Outcome is what TakePartInPhase1 did.
type Phase1Outcome struct {
	// Contribution is this contributor's, nil when phase 1 was closed
	// before its turn.
	Contribution *Contribution
	Sealed       *ledgerv1.CeremonyRecord // the sealed phase 1
	// Included says whether the sealed transcript has a contribution by
	// this key (now or before a restart). When it has not, this
	// contributor's randomness is not in the SRS: say so loudly.
	Included bool
}

// TakePartInPhase1 contributes to the chain's phase 1 once (unless t's key
// has contributed already, e.g. before a restart), then closes phase 1 when
// the ledger accepts the close (enough distinct contributors, every
// required one among them, the close height reached) and seals it, and
// returns once phase 1 is sealed, by whomever. A contribution is computed
// once per accumulator it extends: the ceremony is read again just before
// the upload (another contribution may have got in while this one was
// computed: it is then recomputed on the new last one, without paying
// for the chunks), and after an error that is not a refusal the same
// contribution is submitted again.
func TakePartInPhase1(ctx context.Context, api ledger.CeremonyAPI, t Phase1Turn) (*Phase1Outcome, error) {
	progress := t.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	poll, turnWait := t.Poll, t.TurnWait
	if poll <= 0 {
		poll = time.Second
	}
	if turnWait <= 0 {
		turnWait = 2 * time.Minute
	}
	me := t.Signer.Key.Public().(ed25519.PublicKey)
	lastSeen, lastMove := -1, time.Now() // the count of contributions, and when it last changed
	out := &Phase1Outcome{}
	refusedAt := -1 // the number of contributions when a close was last refused for too few
	failures := 0   // consecutive errors that were not the ledger's refusals
	var pending *mpcsetup.Phase1
	var pendingOn []byte // the hash pending extends
	retry := func(what string, err error) error {
		progress("phase 1: %s: %v; trying again", what, err)
		return sleep(ctx, poll)
	}
	for {
		rec, err := api.Ceremony(ctx, ledger.Phase1ID)
		if transient(err, &failures) {
			if err := retry("read the ceremony", err); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("phase 1: %w", err)
		}
		if rec.CloseHeight != 0 && !rec.Sealed {
			sealed, err := SealWhenReady(ctx, api, t.Signer, ledger.Phase1ID, poll)
			if transient(err, &failures) {
				if err := retry("seal", err); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			rec = sealed
		}
		if rec.Sealed {
			out.Sealed, out.Included = rec, contributedBy(rec, me)
			progress("phase 1 sealed with the beacon of block %d: %x", rec.BeaconHeight, prefix(rec.Beacon))
			return out, nil
		}
		n := turnCount(rec, t.Among)
		if n != lastSeen {
			lastSeen, lastMove = n, time.Now()
		}
		mine := contributedBy(rec, me)
		// Validators waiting on the same stalled count do not all go at
		// once: the later the turn, the longer the wait.
		waitFor := turnWait * time.Duration(max(1, t.Turn-n))
		switch {
		case !mine && (n >= t.Turn || time.Since(lastMove) >= waitFor):
			t0 := time.Now()
			if pending == nil || !bytes.Equal(pendingOn, rec.LastHash) {
				var err error
				pending, err = nextPhase1(ctx, api, rec, me, nil)
				if transient(err, &failures) {
					if err := retry("fetch the last accumulator", err); err != nil {
						return nil, err
					}
					continue
				}
				if err != nil {
					return nil, err
				}
				pendingOn = rec.LastHash
			}
			if now, err := api.Ceremony(ctx, ledger.Phase1ID); err == nil && !bytes.Equal(now.LastHash, pendingOn) {
				progress("phase 1: another contribution got in while this one was computed; computing again on the new last one")
				continue
			}
			c, err := submitContribution(ctx, api, t.Signer, ledger.Phase1ID, pendingOn, pending.Bytes(), t.Attestation)
			if refusedBecause(err, ledgerv1.Code_CODE_CEREMONY_NOT_EXTENDING, ledgerv1.Code_CODE_CEREMONY_CLOSED) {
				progress("phase 1: another contribution got in first (%v); trying again on the new last one", err)
				continue
			}
			if transient(err, &failures) {
				if err := retry("submit", err); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			pending = nil
			out.Contribution = c
			progress("phase 1: contributed %x (%d KiB), verified by the nodes and logged at %d (%v)", c.Hash[:8], c.Bytes>>10, c.Index, time.Since(t0).Round(time.Millisecond))
			continue
		case mine && len(rec.Contributions) != refusedAt:
			tx, err := t.Signer.CeremonyClose(ledger.Phase1ID)
			if err != nil {
				return nil, err
			}
			_, err = submitOnce(ctx, api, tx)
			switch {
			case err == nil:
				progress("phase 1 closed with %d contributions", len(rec.Contributions))
				continue
			case refusedBecause(err, ledgerv1.Code_CODE_CEREMONY_TOO_FEW):
				refusedAt = len(rec.Contributions) // wait for another contribution
			case refusedBecause(err, ledgerv1.Code_CODE_CEREMONY_CLOSE_TOO_EARLY):
				// the height decides: try again after the poll
			case refusedBecause(err, ledgerv1.Code_CODE_CEREMONY_CLOSED, ledgerv1.Code_CODE_CEREMONY_ALREADY_SEALED, ledgerv1.Code_CODE_REPLAYED_SIGNATURE):
				continue // somebody else closed it (a close's body names only the ceremony: another's is the same body)
			case transient(err, &failures):
				progress("phase 1: close: %v; trying again", err)
			default:
				return nil, fmt.Errorf("phase 1: close: %w", err)
			}
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

// turnCount is the number of contributions that count for the turns: by
// the keys in among (the validators), or all of them when among is empty.
func turnCount(rec *ledgerv1.CeremonyRecord, among []ed25519.PublicKey) int {
	if len(among) == 0 {
		return len(rec.Contributions)
	}
	n := 0
	for _, k := range among {
		if contributedBy(rec, k) {
			n++
		}
	}
	return n
}

// maxTransientFailures bounds the consecutive errors TakePartInPhase1
// retries that are not the ledger's refusals (a node still catching up, a
// connection lost): about a minute at the default poll.
const maxTransientFailures = 60

// transient reports whether err is worth another try: an error that is not
// a refusal by the ledger, while fewer than maxTransientFailures came in a
// row (counted in *failures, which a success, err == nil, resets).
func transient(err error, failures *int) bool {
	if err == nil {
		*failures = 0
		return false
	}
	var rj *ledger.Rejection
	if errors.As(err, &rj) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	*failures++
	return *failures <= maxTransientFailures
}

func contributedBy(rec *ledgerv1.CeremonyRecord, key ed25519.PublicKey) bool {
	for _, c := range rec.Contributions {
		if bytes.Equal(c.Contributor, key) {
			return true
		}
	}
	return false
}

func refusedBecause(err error, codes ...ledgerv1.Code) bool {
	var rj *ledger.Rejection
	if !errors.As(err, &rj) {
		return false
	}
	for _, c := range codes {
		if rj.Code == c {
			return true
		}
	}
	return false
}

// ValidatorPhase1 is TakePartInPhase1 for the validator whose home is home
// and whose node is api: it contributes with home's contributor key, in
// turn (the validator's index among the genesis validators). It returns
// (nil, nil) when the chain has no phase 1 or home has no contributor key.
func ValidatorPhase1(ctx context.Context, api ledger.CeremonyAPI, home string, turn int, progress func(string, ...any)) (*Phase1Outcome, error) {
	info, err := api.ChainInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("phase 1: chain info: %w", err)
	}
	if info.GetParams().GetCeremonyPhase1Domain() == 0 {
		return nil, nil
	}
	path := ContributorKeyPath(home)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	key, _, err := ledger.LoadOrCreateNodeKey(path)
	if err != nil {
		return nil, fmt.Errorf("phase 1: contributor key: %w", err)
	}
	// A node still catching up answers from an old state: it would see
	// no contribution by this key even if one is in a later block.
	if c, ok := api.(interface{ CatchingUp() bool }); ok {
		for c.CatchingUp() {
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
	}
	attestation := "genesis validator"
	if turn >= 0 {
		attestation = fmt.Sprintf("validator %d", turn)
	}
	var among []ed25519.PublicKey
	for _, k := range info.GetParams().GetCeremonyPhase1Contributors() {
		among = append(among, ed25519.PublicKey(k))
	}
	return TakePartInPhase1(ctx, api, Phase1Turn{
		Signer:      ledger.Signer{ChainID: info.GetChainId(), Key: key},
		Attestation: attestation,
		Turn:        max(turn, 0),
		Among:       among,
		Progress:    progress,
	})
}

// OpenTestnetPhase1 opens phase 1 at domain n in the genesis parameters p
// of a testnet whose validators' homes are homes: each validator gets a
// contributor key (0600) and, on a chain with a market, the funds for its
// contribution; the ledger refuses to close phase 1 before every one of
// those keys has contributed (CeremonyParams.Phase1Contributors). The
// other ceremony parameters in p are kept.
func OpenTestnetPhase1(p *ledger.Params, n uint64, homes []string) error {
	if p.IsZero() {
		*p = ledger.DefaultParams
	}
	p.Ceremony.Phase1Domain = n
	p.Ceremony.MinContributions = max(p.Ceremony.MinContributions, uint32(len(homes)))
	p.Ceremony.Phase1Contributors = nil
	funds := uint64(0)
	if p.Market.FeePerByte != 0 || p.Market.DefaultFee != 0 || len(p.Market.Fees) != 0 {
		var err error
		if funds, err = Phase1Funds(p.Market, n); err != nil {
			return fmt.Errorf("phase 1 funds: %w", err)
		}
	}
	for _, h := range homes {
		key, _, err := ledger.LoadOrCreateNodeKey(ContributorKeyPath(h))
		if err != nil {
			return fmt.Errorf("contributor key: %w", err)
		}
		p.Ceremony.Phase1Contributors = append(p.Ceremony.Phase1Contributors, key.Public().(ed25519.PublicKey))
		if funds > 0 {
			p.Market.Genesis = append(p.Market.Genesis, ledger.Allocation{Account: key.Public().(ed25519.PublicKey), Amount: funds})
		}
	}
	return p.Validate()
}
