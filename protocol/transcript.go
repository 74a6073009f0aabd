package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/ledger/zkverify"
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

// AuditedStep is one contribution AuditCeremony re-verified.
type AuditedStep struct {
	Position    int      `json:"position"`  // 1-based
	Index       uint64   `json:"log_index"` // of the contribution
	Contributor []byte   `json:"-"`         // its signer, to which its proofs of knowledge are bound
	Hash        [32]byte `json:"-"`
	// ContributorHex and HashHex are Contributor and Hash in hex (JSON).
	ContributorHex string `json:"contributor"`
	HashHex        string `json:"hash"`
}

func auditedStep(pos int, index uint64, signer, blob []byte) AuditedStep {
	h := sha256.Sum256(blob)
	return AuditedStep{Position: pos, Index: index, Contributor: signer, Hash: h, ContributorHex: hex.EncodeToString(signer), HashHex: hex.EncodeToString(h[:])}
}

// CeremonyAudit is what AuditCeremony re-verified.
type CeremonyAudit struct {
	Ceremony string        `json:"ceremony"`
	Domain   uint64        `json:"phase1_domain"`
	Phase1   []AuditedStep `json:"phase1"`
	// Phase1Sealed: phase 1's seal is logged after its last contribution.
	Phase1Sealed bool          `json:"phase1_sealed"`
	Phase2       []AuditedStep `json:"phase2,omitempty"` // empty when auditing phase 1 alone
	// VerifyingKeyHash is SHA-256 of the verifying key re-derived from the
	// re-verified transcript; it equals the one the ledger records.
	VerifyingKeyHash []byte `json:"-"`
	VerifyingKeyHex  string `json:"verifying_key_hash,omitempty"`
}

// WriteText says what was re-verified.
func (a *CeremonyAudit) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "phase 1 (domain 2^%d): %d contributions re-verified from the log, each against the previous one, with proofs bound to its signer\n", log2(a.Domain), len(a.Phase1))
	for _, s := range a.Phase1 {
		fmt.Fprintf(w, "  %d. log entry %d, by %s, accumulator %s\n", s.Position, s.Index, s.ContributorHex[:16], s.HashHex[:16])
	}
	if !a.Phase1Sealed {
		_, err := fmt.Fprintln(w, "phase 1 is not sealed yet")
		return err
	}
	fmt.Fprintln(w, "phase 1 sealed after its last contribution; no contribution left out")
	if a.Ceremony == ledger.Phase1ID {
		return nil
	}
	fmt.Fprintf(w, "phase 2 %q: the logged start checked against the sealed phase 1; %d contributions re-verified\n", a.Ceremony, len(a.Phase2))
	for _, s := range a.Phase2 {
		fmt.Fprintf(w, "  %d. log entry %d, by %s, accumulator %s\n", s.Position, s.Index, s.ContributorHex[:16], s.HashHex[:16])
	}
	_, err := fmt.Fprintf(w, "verifying key re-derived from the transcript: %s, the one the ledger derived and binds this ceremony's models to\n", a.VerifyingKeyHex)
	return err
}

// AuditLedgerCeremony is AuditCeremony under the reader's current head,
// with the ledger's own ceremony cryptography (ledger/zkverify).
func AuditLedgerCeremony(ctx context.Context, r *trust.Reader, id string, progress func(format string, a ...any)) (*CeremonyAudit, error) {
	head, err := r.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger head: %w", err)
	}
	return AuditCeremony(ctx, r, head, id, zkverify.NewCeremony(), progress)
}

// AuditCeremony re-verifies ceremony id's whole transcript with v, from
// verified log entries and the chunks they name, without relying on the
// nodes' verification: every phase-1 contribution against the previous
// one (the first against the domain's initial accumulator) with its proofs
// bound to the entry's signer, phase 1's seal logged after the last; for a
// phase 2, its logged open (spec, batch, start) checked against the sealed
// phase 1, every contribution verified in turn, and the verifying key
// re-derived from the last accumulator and the beacon, which must hash to
// the record's: the key the ledger binds models of this ceremony to. No
// contribution may be logged between the last one the record lists and
// the seal. A
// validator set that accepted a bad contribution, or a node that serves
// another transcript, fails here. Beacons (block hashes) are taken from the
// records: they keep the last contributor from biasing the keys, and the
// keys' soundness rests on one honest contributor per phase, not on them.
// Progress, if set, gets a line per verified step.
func AuditCeremony(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, v ledger.CeremonyVerifier, progress func(format string, a ...any)) (*CeremonyAudit, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	api, rec1, err := readCeremony(ctx, r.API, ledger.Phase1ID)
	if err != nil {
		return nil, err
	}
	out := &CeremonyAudit{Ceremony: id, Domain: rec1.GetDomain()}
	var last []byte // the last accumulator re-verified
	for i, step := range rec1.GetContributions() {
		signer, blob, err := loggedContribution(ctx, r, head, api, ledger.Phase1ID, i, step.GetIndex())
		if err != nil {
			return nil, err
		}
		if err := v.VerifyPhase1(rec1.GetDomain(), last, blob, signer); err != nil {
			return nil, fmt.Errorf("phase 1: contribution %d (log entry %d): %w", i+1, step.GetIndex(), err)
		}
		out.Phase1 = append(out.Phase1, auditedStep(i+1, step.GetIndex(), signer, blob))
		progress("phase 1: contribution %d (log entry %d, by %x) verified", i+1, step.GetIndex(), prefix(signer))
		last = blob
	}
	if rec1.GetSealed() {
		if len(out.Phase1) == 0 {
			return nil, errors.New("phase 1: sealed without a contribution")
		}
		if err := checkSealEntry(ctx, r, head, ledger.Phase1ID, rec1.GetSealIndex(), out.Phase1[len(out.Phase1)-1].Index); err != nil {
			return nil, err
		}
		if err := noOmittedContribution(ctx, r, head, ledger.Phase1ID, out.Phase1[len(out.Phase1)-1].Index, rec1.GetSealIndex()); err != nil {
			return nil, err
		}
		out.Phase1Sealed = true
	}
	if id == ledger.Phase1ID {
		return out, nil
	}
	if !out.Phase1Sealed {
		return nil, fmt.Errorf("ceremony %q: phase 1 is not sealed", id)
	}
	_, rec2, err := readSealedPhase2(ctx, r.API, id)
	if err != nil {
		return nil, err
	}
	openTx, err := r.Entry(ctx, head, rec2.GetStart().GetIndex())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: open: %w", id, err)
	}
	o := openTx.Body.GetPhase2Open()
	if o == nil || o.GetCeremonyId() != id {
		return nil, fmt.Errorf("ceremony %q: log entry %d is not its open", id, rec2.GetStart().GetIndex())
	}
	if rec2.GetStart().GetIndex() <= rec1.GetSealIndex() {
		return nil, fmt.Errorf("ceremony %q: opened (entry %d) before phase 1's seal (entry %d)", id, rec2.GetStart().GetIndex(), rec1.GetSealIndex())
	}
	start, err := FetchBlob(ctx, api, o.GetChunks())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: start: %w", id, err)
	}
	p1 := ledger.Phase1Transcript{Domain: rec1.GetDomain(), Last: last, Beacon: rec1.GetBeacon()}
	if _, err := v.CheckPhase2Start(p1, o.GetSpec(), int(o.GetBatch()), start); err != nil {
		return nil, fmt.Errorf("ceremony %q: start: %w", id, err)
	}
	progress("phase 2: the start (log entry %d) checked against the sealed phase 1", rec2.GetStart().GetIndex())
	prev := start
	after := rec2.GetStart().GetIndex()
	for i, step := range rec2.GetContributions() {
		if step.GetIndex() <= after {
			return nil, fmt.Errorf("ceremony %q: contribution %d (entry %d) is not after entry %d", id, i+1, step.GetIndex(), after)
		}
		signer, blob, err := loggedContribution(ctx, r, head, api, id, i, step.GetIndex())
		if err != nil {
			return nil, err
		}
		if err := v.VerifyPhase2(o.GetSpec(), int(o.GetBatch()), prev, i == 0, blob, signer); err != nil {
			return nil, fmt.Errorf("ceremony %q: contribution %d (log entry %d): %w", id, i+1, step.GetIndex(), err)
		}
		out.Phase2 = append(out.Phase2, auditedStep(i+1, step.GetIndex(), signer, blob))
		progress("phase 2: contribution %d (log entry %d, by %x) verified", i+1, step.GetIndex(), prefix(signer))
		prev, after = blob, step.GetIndex()
	}
	if err := checkSealEntry(ctx, r, head, id, rec2.GetSealIndex(), after); err != nil {
		return nil, err
	}
	if err := noOmittedContribution(ctx, r, head, id, after, rec2.GetSealIndex()); err != nil {
		return nil, err
	}
	vk, err := v.DeriveVerifyingKey(p1, o.GetSpec(), int(o.GetBatch()), start, prev, rec2.GetBeacon())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: verifying key: %w", id, err)
	}
	h := sha256.Sum256(vk)
	if !bytes.Equal(h[:], rec2.GetVerifyingKeyHash()) {
		return nil, fmt.Errorf("ceremony %q: the transcript gives verifying key %x, the ledger records %x", id, h[:8], prefix(rec2.GetVerifyingKeyHash()))
	}
	out.VerifyingKeyHash, out.VerifyingKeyHex = h[:], hex.EncodeToString(h[:])
	progress("phase 2 sealed: the verifying key re-derived from the transcript is the ledger's, %x", h[:8])
	return out, nil
}

// noOmittedContribution checks that no log entry strictly between the
// last contribution a record lists (at after) and the seal is another
// contribution to ceremony id: the chain of verifications catches a record
// that leaves out a contribution at its start or in its middle, and this a
// record that leaves out the last ones. (The log holds only accepted
// transactions; the range is the close and whatever else shared its
// blocks.)
func noOmittedContribution(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, after, seal uint64) error {
	for i := after + 1; i < seal; i++ {
		tx, err := r.Entry(ctx, head, i)
		if err != nil {
			return fmt.Errorf("ceremony %q: log entry %d: %w", id, i, err)
		}
		if tx.Body.GetCeremonyContribution().GetCeremonyId() == id {
			return fmt.Errorf("ceremony %q: log entry %d is a contribution to it that the node's record leaves out", id, i)
		}
	}
	return nil
}

// loggedContribution reads the i-th (0-based) contribution to ceremony id
// from the verified log entry at index and the chunks it names, each
// checked against its hash.
func loggedContribution(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, api ledger.CeremonyAPI, id string, i int, index uint64) (signer, blob []byte, err error) {
	tx, err := r.Entry(ctx, head, index)
	if err != nil {
		return nil, nil, fmt.Errorf("ceremony %q: contribution %d: %w", id, i+1, err)
	}
	c := tx.Body.GetCeremonyContribution()
	if c == nil || c.GetCeremonyId() != id {
		return nil, nil, fmt.Errorf("ceremony %q: log entry %d is not a contribution to it", id, index)
	}
	if blob, err = FetchBlob(ctx, api, c.GetChunks()); err != nil {
		return nil, nil, fmt.Errorf("ceremony %q: contribution %d: %w", id, i+1, err)
	}
	return tx.Signer, blob, nil
}
