package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
)

// Checking a ceremony from the log, not from the node's word.
//
// A ceremony's record (ledger.CeremonyAPI.Ceremony) is a node's summary: it
// is not proven against anything the anchor signs. What is proven is the
// log: every contribution, close and seal is a signed transaction whose
// inclusion r.Entry checks under a head the anchor vouches for. Because the
// ledger accepts a contribution only when it extends the ceremony's last
// accumulator and refuses every contribution after the close, a
// contribution that is logged before the ceremony's logged seal is, by the
// ledger's rules, in the chain every later accumulator and the final key
// build on. The checks below use the record only to find log indices and
// check everything they rely on in the entries (and in the chunks, whose
// hashes the entries name).

// TranscriptProof is what VerifyInTranscript established.
type TranscriptProof struct {
	Ceremony    string
	Position    int    // 1-based among the ceremony's contributions
	Index       uint64 // log index of the contribution
	Contributor []byte // its signer
	SealIndex   uint64 // log index of the seal; 0 while unsealed
	Sealed      bool
}

// VerifyInTranscript checks, from verified log entries, that the
// accumulator whose hash is hash is a contribution to ceremony id ("I
// contributed, and my contribution is in the final key"): the entry at the
// record's index for it is a CeremonyContribution to id, its chunks
// (fetched, each checked against its hash) concatenate to an accumulator
// with that hash, and, once the record says sealed, the seal is logged
// after it. A node that claims a contribution it never logged, or a seal it
// never logged, fails here.
func VerifyInTranscript(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, hash []byte) (*TranscriptProof, error) {
	api, rec, err := readCeremony(ctx, r.API, id)
	if err != nil {
		return nil, err
	}
	pos := -1
	for i, c := range rec.GetContributions() {
		if bytes.Equal(c.GetHash(), hash) {
			pos = i
			break
		}
	}
	if pos < 0 {
		return nil, fmt.Errorf("ceremony %q: no contribution %x among its %d", id, hash[:min(8, len(hash))], len(rec.GetContributions()))
	}
	step := rec.Contributions[pos]
	tx, err := r.Entry(ctx, head, step.GetIndex())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: contribution %d: %w", id, pos+1, err)
	}
	c := tx.Body.GetCeremonyContribution()
	if c == nil || c.GetCeremonyId() != id {
		return nil, fmt.Errorf("ceremony %q: log entry %d is not a contribution to it", id, step.GetIndex())
	}
	h := sha256.New()
	for i, ch := range c.GetChunks() {
		data, err := api.Chunk(ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("ceremony %q: contribution %d, chunk %d: %w", id, pos+1, i, err)
		}
		if got := sha256.Sum256(data); !bytes.Equal(got[:], ch) {
			return nil, fmt.Errorf("ceremony %q: contribution %d, chunk %d: the node served bytes of another hash", id, pos+1, i)
		}
		h.Write(data)
	}
	if got := h.Sum(nil); !bytes.Equal(got, hash) {
		return nil, fmt.Errorf("ceremony %q: log entry %d's chunks make accumulator %x, not %x", id, step.GetIndex(), got[:8], hash[:min(8, len(hash))])
	}
	p := &TranscriptProof{Ceremony: id, Position: pos + 1, Index: step.GetIndex(), Contributor: tx.Signer}
	if rec.GetSealed() {
		if err := checkSealEntry(ctx, r, head, id, rec.GetSealIndex(), step.GetIndex()); err != nil {
			return nil, err
		}
		p.Sealed, p.SealIndex = true, rec.GetSealIndex()
	}
	return p, nil
}

// readCeremony is ceremony id's record as the node reports it (a hint: what
// is relied on is checked in log entries), and the node's ceremony API.
func readCeremony(ctx context.Context, api ledger.API, id string) (ledger.CeremonyAPI, *ledgerv1.CeremonyRecord, error) {
	capi, ok := api.(ledger.CeremonyAPI)
	if !ok {
		return nil, nil, fmt.Errorf("ceremony %q: this ledger client does not read ceremonies", id)
	}
	rec, err := capi.Ceremony(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony %q: %w", id, err)
	}
	return capi, rec, nil
}

// readSealedPhase2 is readCeremony for a ceremony that must be a sealed
// phase 2 (a model's key comes from one).
func readSealedPhase2(ctx context.Context, api ledger.API, id string) (ledger.CeremonyAPI, *ledgerv1.CeremonyRecord, error) {
	capi, rec, err := readCeremony(ctx, api, id)
	if err == nil && (rec.GetPhase() != 2 || !rec.GetSealed()) {
		err = fmt.Errorf("ceremony %q is not a sealed phase 2", id)
	}
	return capi, rec, err
}

// checkSealEntry checks that the log entry at index is ceremony id's seal
// and comes after the entry at after.
func checkSealEntry(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, index, after uint64) error {
	if index <= after {
		return fmt.Errorf("ceremony %q: its seal (entry %d) is not after entry %d", id, index, after)
	}
	return checkSeal(ctx, r, head, id, index)
}

// checkSeal checks that the log entry at index is ceremony id's seal.
func checkSeal(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, index uint64) error {
	tx, err := r.Entry(ctx, head, index)
	if err != nil {
		return fmt.Errorf("ceremony %q: seal: %w", id, err)
	}
	if tx.Body.GetCeremonySeal().GetCeremonyId() != id {
		return fmt.Errorf("ceremony %q: log entry %d is not its seal", id, index)
	}
	return nil
}

// ErrNoTrustedContributor: no key the verifier trusts contributed to a
// ceremony a model's key comes from.
var ErrNoTrustedContributor = errors.New("no contributor the verifier trusts")

// CheckContributedBy checks, from verified log entries, that one of keys
// contributed to sealed ceremony id before its seal. A Groth16 key is sound
// if at least one contributor to each phase destroyed its randomness; a
// verifier that trusts a contributor (itself, say) needs no other
// assumption about who else took part. The ledger counts distinct signers,
// but one party can hold many keys: only this check removes the need to
// trust the others.
func CheckContributedBy(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, keys []ed25519.PublicKey) error {
	_, rec, err := readCeremony(ctx, r.API, id)
	if err != nil {
		return err
	}
	if !rec.GetSealed() {
		return fmt.Errorf("ceremony %q is not sealed", id)
	}
	for _, step := range rec.GetContributions() {
		if !containsKey(keys, step.GetContributor()) {
			continue
		}
		tx, err := r.Entry(ctx, head, step.GetIndex())
		if err != nil {
			return fmt.Errorf("ceremony %q: contribution at %d: %w", id, step.GetIndex(), err)
		}
		if tx.Body.GetCeremonyContribution().GetCeremonyId() != id || !containsKey(keys, tx.Signer) {
			return fmt.Errorf("ceremony %q: log entry %d is not a contribution by a trusted key", id, step.GetIndex())
		}
		return checkSealEntry(ctx, r, head, id, rec.GetSealIndex(), step.GetIndex())
	}
	return fmt.Errorf("ceremony %q: %w among its %d contributions", id, ErrNoTrustedContributor, len(rec.GetContributions()))
}

func containsKey(keys []ed25519.PublicKey, k []byte) bool {
	for _, t := range keys {
		if bytes.Equal(t, k) {
			return true
		}
	}
	return false
}
