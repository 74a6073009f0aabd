package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	signer, blob, err := loggedContribution(ctx, r, head, api, id, pos, step.GetIndex())
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(blob); !bytes.Equal(got[:], hash) {
		return nil, fmt.Errorf("ceremony %q: log entry %d's chunks make accumulator %x, not %x", id, step.GetIndex(), got[:8], hash[:min(8, len(hash))])
	}
	p := &TranscriptProof{Ceremony: id, Position: pos + 1, Index: step.GetIndex(), Contributor: signer}
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
// trust the others. It relies on the ledger's rule that a contribution
// extends the last one (a dishonest validator set could log a trusted
// contribution on a fork); AuditCeremony followed by
// CeremonyAudit.ContributedBy does not.
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

// hexBytes is bytes that JSON shows in hex.
type hexBytes []byte

func (b hexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(b)) }

// AuditedStep is one contribution AuditCeremony re-verified.
type AuditedStep struct {
	Position    int      `json:"position"`    // 1-based
	Index       uint64   `json:"log_index"`   // of the contribution
	Contributor hexBytes `json:"contributor"` // its signer, to which its proofs of knowledge are bound
	Hash        hexBytes `json:"hash"`        // SHA-256 of the accumulator
}

func auditedStep(pos int, index uint64, signer, blob []byte) AuditedStep {
	h := sha256.Sum256(blob)
	return AuditedStep{Position: pos, Index: index, Contributor: signer, Hash: h[:]}
}

// CeremonyAudit is what AuditCeremony re-verified.
type CeremonyAudit struct {
	Ceremony string        `json:"ceremony"`
	Domain   uint64        `json:"phase1_domain"`
	Phase1   []AuditedStep `json:"phase1"`
	// Phase1Sealed: phase 1's seal is logged after its last contribution.
	Phase1Sealed    bool   `json:"phase1_sealed"`
	Phase1SealIndex uint64 `json:"phase1_seal_index,omitempty"`
	// The phase 2 (empty when auditing phase 1 alone): its logged open,
	// contributions and seal.
	Spec      []byte        `json:"-"`
	SpecID    hexBytes      `json:"spec_id,omitempty"`
	Batch     int           `json:"batch,omitempty"`
	OpenIndex uint64        `json:"open_index,omitempty"`
	Phase2    []AuditedStep `json:"phase2,omitempty"`
	SealIndex uint64        `json:"seal_index,omitempty"`
	// Beacon is the phase-2 beacon, from the node's record: AuditModel pins
	// it, as no other beacon gives the registered key.
	Beacon hexBytes `json:"beacon,omitempty"`
	// VerifyingKeyHash is SHA-256 of the verifying key re-derived from the
	// re-verified transcript (the node's record claims the same).
	VerifyingKeyHash hexBytes `json:"verifying_key_hash,omitempty"`
}

// ContributedBy reports whether one of keys signed a re-verified
// contribution to each audited phase: with the audit, the check that
// removes the need to trust the other contributors does not rest on the
// ledger's rules either.
func (a *CeremonyAudit) ContributedBy(keys []ed25519.PublicKey) bool {
	in := func(steps []AuditedStep) bool {
		for _, s := range steps {
			if containsKey(keys, s.Contributor) {
				return true
			}
		}
		return false
	}
	return in(a.Phase1) && (a.Ceremony == ledger.Phase1ID || in(a.Phase2))
}

// WriteText says what was re-verified.
func (a *CeremonyAudit) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "phase 1 (domain 2^%d): %d contributions re-verified from the log, each against the previous one, with proofs bound to its signer\n", log2(a.Domain), len(a.Phase1))
	writeSteps(w, a.Phase1)
	if !a.Phase1Sealed {
		_, err := fmt.Fprintln(w, "phase 1 is not sealed: no seal is logged, and these are all its logged contributions")
		return err
	}
	fmt.Fprintf(w, "phase 1 sealed at log entry %d; these are all the contributions logged before it\n", a.Phase1SealIndex)
	if a.Ceremony == ledger.Phase1ID {
		return nil
	}
	fmt.Fprintf(w, "phase 2 %q (circuit %x, batch %d): the start logged at entry %d checked against the sealed phase 1; %d contributions re-verified, all those logged before its seal at entry %d\n",
		a.Ceremony, prefix(a.SpecID), a.Batch, a.OpenIndex, len(a.Phase2), a.SealIndex)
	writeSteps(w, a.Phase2)
	_, err := fmt.Fprintf(w, "verifying key re-derived from the transcript and the beacon %x: %x (the node's record claims the same; `--model` checks the key a model is registered with)\n", prefix(a.Beacon), []byte(a.VerifyingKeyHash))
	return err
}

func writeSteps(w io.Writer, steps []AuditedStep) {
	for _, s := range steps {
		fmt.Fprintf(w, "  %d. log entry %d, by %x, accumulator %x\n", s.Position, s.Index, prefix(s.Contributor), prefix(s.Hash))
	}
}

// AuditCeremony re-verifies ceremony id's whole transcript with v, from
// verified log entries and the chunks they name, without relying on the
// nodes' verification or on their records (GetCeremony), which are used
// only to find log indices:
//
//   - phase 1: the contributions logged before its seal (found by reading
//     every entry up to it) are exactly the ones the record lists, in log
//     order, and each verifies against the previous one (the first against
//     the domain's initial accumulator) with its proofs bound to the entry's
//     signer; unsealed, no seal is logged and the record lists every
//     contribution logged so far;
//   - a phase 2: its logged open (spec, batch, start), after phase 1's seal,
//     is checked against the sealed phase 1; the contributions logged
//     between the open and the seal are exactly the listed ones, each
//     verified in turn; the verifying key is re-derived from the last
//     accumulator and the beacon and must be the one the record claims.
//
// The key and the beacon come from the record: AuditModel compares the
// key with the one a model's logged registration carries, which no other
// beacon would give. (The beacons keep the last contributor from biasing
// the keys; soundness rests on one honest contributor per phase.)
// A validator set that accepted a bad contribution, or a node that serves
// another transcript, fails here. Progress, if set, gets a line per step.
func AuditCeremony(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, v ledger.CeremonyVerifier, progress func(format string, a ...any)) (*CeremonyAudit, error) {
	if progress == nil {
		progress = func(string, ...any) {}
	}
	api, rec1, err := readCeremony(ctx, r.API, ledger.Phase1ID)
	if err != nil {
		return nil, err
	}
	out := &CeremonyAudit{Ceremony: id, Domain: rec1.GetDomain()}
	end := head.GetSize() // phase 1's contributions are logged before this
	if rec1.GetSealed() {
		end = rec1.GetSealIndex()
	}
	if err := sameContributions(ctx, r, head, ledger.Phase1ID, rec1.GetContributions(), 0, end, !rec1.GetSealed()); err != nil {
		return nil, err
	}
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
			return nil, errors.New("phase 1: the node's record says sealed, with no contribution")
		}
		if err := checkSeal(ctx, r, head, ledger.Phase1ID, rec1.GetSealIndex()); err != nil {
			return nil, err
		}
		out.Phase1Sealed, out.Phase1SealIndex = true, rec1.GetSealIndex()
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
	if rec2.GetStart() == nil {
		return nil, fmt.Errorf("ceremony %q: the node's record names no start", id)
	}
	open := rec2.GetStart().GetIndex()
	if open <= rec1.GetSealIndex() {
		return nil, fmt.Errorf("ceremony %q: its open (log entry %d) is not after phase 1's seal (entry %d)", id, open, rec1.GetSealIndex())
	}
	openTx, err := r.Entry(ctx, head, open)
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: open: %w", id, err)
	}
	o := openTx.Body.GetPhase2Open()
	if o == nil || o.GetCeremonyId() != id {
		return nil, fmt.Errorf("ceremony %q: log entry %d is not its open", id, open)
	}
	if rec2.GetSealIndex() <= open {
		return nil, fmt.Errorf("ceremony %q: its seal (log entry %d) is not after its open (entry %d)", id, rec2.GetSealIndex(), open)
	}
	if err := checkSeal(ctx, r, head, id, rec2.GetSealIndex()); err != nil {
		return nil, err
	}
	if err := sameContributions(ctx, r, head, id, rec2.GetContributions(), open+1, rec2.GetSealIndex(), false); err != nil {
		return nil, err
	}
	start, err := FetchBlob(ctx, api, o.GetChunks())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: start: %w", id, err)
	}
	p1 := ledger.Phase1Transcript{Domain: rec1.GetDomain(), Last: last, Beacon: rec1.GetBeacon()}
	info, err := v.CheckPhase2Start(p1, o.GetSpec(), int(o.GetBatch()), start)
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: start: %w", id, err)
	}
	out.Spec, out.SpecID, out.Batch, out.OpenIndex = o.GetSpec(), info.SpecID[:], int(o.GetBatch()), open
	progress("phase 2: the start (log entry %d) checked against the sealed phase 1", open)
	prev := start
	for i, step := range rec2.GetContributions() {
		signer, blob, err := loggedContribution(ctx, r, head, api, id, i, step.GetIndex())
		if err != nil {
			return nil, err
		}
		if err := v.VerifyPhase2(o.GetSpec(), int(o.GetBatch()), prev, i == 0, blob, signer); err != nil {
			return nil, fmt.Errorf("ceremony %q: contribution %d (log entry %d): %w", id, i+1, step.GetIndex(), err)
		}
		out.Phase2 = append(out.Phase2, auditedStep(i+1, step.GetIndex(), signer, blob))
		progress("phase 2: contribution %d (log entry %d, by %x) verified", i+1, step.GetIndex(), prefix(signer))
		prev = blob
	}
	vk, err := v.DeriveVerifyingKey(p1, o.GetSpec(), int(o.GetBatch()), start, prev, rec2.GetBeacon())
	if err != nil {
		return nil, fmt.Errorf("ceremony %q: verifying key: %w", id, err)
	}
	h := sha256.Sum256(vk)
	if !bytes.Equal(h[:], rec2.GetVerifyingKeyHash()) {
		return nil, fmt.Errorf("ceremony %q: the transcript gives verifying key %x, the node's record claims %x", id, h[:8], prefix(rec2.GetVerifyingKeyHash()))
	}
	out.SealIndex, out.Beacon, out.VerifyingKeyHash = rec2.GetSealIndex(), rec2.GetBeacon(), h[:]
	progress("phase 2 sealed: the verifying key re-derived from the transcript is %x", h[:8])
	return out, nil
}

// ModelAudit is what AuditModel checked: the model's logged registration
// and the audit of the ceremony it names.
type ModelAudit struct {
	Model             string `json:"model"`
	RegistrationIndex uint64 `json:"registration_index"`
	*CeremonyAudit
}

// WriteText says what was re-verified, and that the registered key is the
// transcript's.
func (m *ModelAudit) WriteText(w io.Writer) error {
	if err := m.CeremonyAudit.WriteText(w); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "model %q, registered at log entry %d, is bound to that key: its registration carries it, with the ceremony's spec and batch\n", m.Model, m.RegistrationIndex)
	return err
}

// AuditModel audits the ceremony model modelID's logged registration
// names (AuditCeremony) and checks that the registration carries the key
// re-derived from its transcript, for the ceremony's spec and batch: the
// key every client of the model verifies proofs with. A registration with
// an owner-made key (no ceremony) is refused: there is nothing to audit.
func AuditModel(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, modelID string, v ledger.CeremonyVerifier, progress func(format string, a ...any)) (*ModelAudit, error) {
	index, _, rm, err := registrationEntry(ctx, r, head, modelID)
	if err != nil {
		return nil, err
	}
	if rm.GetCeremonyId() == "" {
		return nil, fmt.Errorf("model %q is registered with its owner's key, from no ceremony: nothing to audit", modelID)
	}
	a, err := AuditCeremony(ctx, r, head, rm.GetCeremonyId(), v, progress)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", modelID, err)
	}
	if !bytes.Equal(a.Spec, rm.GetSpec()) || a.Batch != int(rm.GetProofBatch()) {
		return nil, fmt.Errorf("model %q: registered for another circuit (batch %d) than ceremony %q's (batch %d)", modelID, rm.GetProofBatch(), a.Ceremony, a.Batch)
	}
	if h := sha256.Sum256(rm.GetVerifyingKey()); !bytes.Equal(h[:], a.VerifyingKeyHash) {
		return nil, fmt.Errorf("model %q: registered with verifying key %x, not the key %x re-derived from ceremony %q's transcript", modelID, h[:8], a.VerifyingKeyHash[:8], a.Ceremony)
	}
	return &ModelAudit{Model: modelID, RegistrationIndex: index, CeremonyAudit: a}, nil
}

// AuditLedgerCeremony runs AuditModel when modelID is set, else
// AuditCeremony of id, under the reader's current head and with the
// ledger's own ceremony cryptography (ledger/zkverify).
func AuditLedgerCeremony(ctx context.Context, r *trust.Reader, id, modelID string, progress func(format string, a ...any)) (interface{ WriteText(io.Writer) error }, error) {
	head, err := r.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger head: %w", err)
	}
	// A failed audit returns a nil interface, not a typed nil: callers
	// print what they get.
	if modelID != "" {
		m, err := AuditModel(ctx, r, head, modelID, zkverify.NewCeremony(), progress)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
	a, err := AuditCeremony(ctx, r, head, id, zkverify.NewCeremony(), progress)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// sameContributions reads every log entry in [from, to) and checks that
// the contributions to ceremony id among them are exactly steps, in log
// order, and, when noSeal, that none is its seal: a record that leaves out
// a contribution, lists one twice, out of order, or one of another
// ceremony, or hides a seal, fails. (Cheap next to the cryptography: one
// inclusion proof per entry.)
func sameContributions(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, steps []*ledgerv1.CeremonyStep, from, to uint64, noSeal bool) error {
	k := 0
	for i := from; i < to; i++ {
		tx, err := r.Entry(ctx, head, i)
		if err != nil {
			return fmt.Errorf("ceremony %q: log entry %d: %w", id, i, err)
		}
		if noSeal && tx.Body.GetCeremonySeal().GetCeremonyId() == id {
			return fmt.Errorf("ceremony %q: log entry %d is its seal; the node's record says it is not sealed", id, i)
		}
		if tx.Body.GetCeremonyContribution().GetCeremonyId() != id {
			continue
		}
		if k >= len(steps) || steps[k].GetIndex() != i {
			return fmt.Errorf("ceremony %q: log entry %d is a contribution to it that the node's record leaves out or misplaces", id, i)
		}
		k++
	}
	if k != len(steps) {
		return fmt.Errorf("ceremony %q: the node's record lists %d contributions, the log holds %d in entries %d to %d", id, len(steps), k, from, to)
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
