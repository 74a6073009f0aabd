package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/zk"
)

// Registration is what the ledger says about a model, read from the
// RegisterModel transaction itself (through a trust.Reader), never from a
// server's description or a node's summary.
type Registration struct {
	ModelID    string
	Index      uint64 // log index of the RegisterModel transaction
	Spec       *circuits.Spec
	Commitment zk.Commitment
	VK         *zk.VerifyingKey
	Batch      int // challenges per proof
	OwnerKey   ed25519.PublicKey
	ServerKey  ed25519.PublicKey
	// Ceremony is the sealed phase-2 ceremony the key was derived from by
	// the ledger's nodes (CheckCeremonyKey); empty for a key its owner
	// made (INSECURE: whoever ran that setup can forge proofs).
	Ceremony string
}

// Pin is what a party may require of a registration beyond its model id
// (model ids are first come, first served).
type Pin struct {
	// RequireCeremony refuses a model whose key was not derived by the
	// ledger from a sealed ceremony.
	RequireCeremony bool
	// Contributors, when set, refuses a model unless one of these keys
	// contributed to the chain's phase 1 and one to the model's phase 2,
	// as verified log entries show (CheckContributedBy): the verifier then
	// trusts the setup because it trusts a contributor (itself, typically),
	// not because the ledger counted enough signers. Implies
	// RequireCeremony.
	Contributors []ed25519.PublicKey
	Commitment   *zk.Commitment
	OwnerKey     ed25519.PublicKey
	ServerKey    ed25519.PublicKey
}

// ReadRegistration finds model modelID's registration in the log verified
// by head and checks it: the spec parses, the verifying key is for the
// spec's circuit and batch (zk.CheckKeyForSpec), and the pin holds.
func ReadRegistration(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, modelID string, pin Pin) (*Registration, error) {
	index, tx, rm, err := registrationEntry(ctx, r, head, modelID)
	if err != nil {
		return nil, err
	}
	spec, err := circuits.ParseSpec(rm.GetSpec())
	if err != nil {
		return nil, fmt.Errorf("registered spec of %q: %w", modelID, err)
	}
	vk, err := zk.UnmarshalVerifyingKey(rm.GetVerifyingKey())
	if err != nil {
		return nil, fmt.Errorf("registered verifying key of %q: %w", modelID, err)
	}
	if err := zk.CheckKeyForSpec(vk, spec, int(rm.GetProofBatch())); err != nil {
		return nil, fmt.Errorf("registered verifying key of %q: %w", modelID, err)
	}
	reg := &Registration{
		ModelID: modelID, Index: index, Spec: spec, VK: vk, Batch: int(rm.GetProofBatch()),
		OwnerKey: tx.Signer, ServerKey: rm.GetServerKey(),
	}
	copy(reg.Commitment[:], rm.GetCommitment())
	if id := rm.GetCeremonyId(); id != "" {
		if err := CheckCeremonyKey(ctx, r, head, id, rm.GetSpec(), int(rm.GetProofBatch()), rm.GetVerifyingKey()); err != nil {
			return nil, fmt.Errorf("registration of %q: %w", modelID, err)
		}
		reg.Ceremony = id
		if len(pin.Contributors) > 0 {
			for _, c := range []string{ledger.Phase1ID, id} {
				if err := CheckContributedBy(ctx, r, head, c, pin.Contributors); err != nil {
					return nil, fmt.Errorf("registration of %q: %w", modelID, err)
				}
			}
		}
	}
	if err := pin.check(reg); err != nil {
		return nil, fmt.Errorf("registration of %q: %w", modelID, err)
	}
	return reg, nil
}

func (p Pin) check(r *Registration) error {
	switch {
	case (p.RequireCeremony || len(p.Contributors) > 0) && r.Ceremony == "":
		return errors.New("its verifying key names no ledger ceremony (the owner made it: INSECURE), and a ceremony is required")
	case p.Commitment != nil && *p.Commitment != r.Commitment:
		return fmt.Errorf("registered with commitment %s, pinned %s", r.Commitment, p.Commitment)
	case p.OwnerKey != nil && !bytes.Equal(p.OwnerKey, r.OwnerKey):
		return errors.New("registered by another owner key than the pinned one")
	case p.ServerKey != nil && !bytes.Equal(p.ServerKey, r.ServerKey):
		return errors.New("registered with another server key than the pinned one")
	}
	return nil
}

// CheckCeremonyKey checks that vk is the verifying key the ledger's nodes
// derived from sealed phase-2 ceremony id for spec at batch: the ceremony's
// record (read from the node) names that spec, batch and the key's hash,
// and its seal is logged (an entry checked against head). On a chain
// whose head a quorum of validators signs, a RegisterModel naming the
// ceremony in that log is itself the validators' statement that the key is
// the derived one (the ledger refuses any other: CODE_CEREMONY_KEY_MISMATCH);
// this check also holds against a node that serves another record.
func CheckCeremonyKey(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, id string, spec []byte, batch int, vk []byte) error {
	_, rec, err := readSealedPhase2(ctx, r.API, id)
	if err != nil {
		return err
	}
	if !bytes.Equal(rec.GetSpec(), spec) || int(rec.GetBatch()) != batch {
		return fmt.Errorf("ceremony %q is for another spec or batch (%d)", id, rec.GetBatch())
	}
	if h := sha256.Sum256(vk); !bytes.Equal(h[:], rec.GetVerifyingKeyHash()) {
		return fmt.Errorf("%w: key %x, ceremony %q derived %x", ErrKeyNotDerived, h[:8], id, rec.GetVerifyingKeyHash()[:min(8, len(rec.GetVerifyingKeyHash()))])
	}
	return checkSeal(ctx, r, head, id, rec.GetSealIndex())
}

// ErrKeyNotDerived: a model's verifying key is not the one the ledger
// derived from the ceremony it names.
var ErrKeyNotDerived = errors.New("the verifying key is not the one the ledger derived from the ceremony")

// registrationEntry is model modelID's registration, read from the
// verified log entry the node's model record points at.
func registrationEntry(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, modelID string) (uint64, *ledger.Tx, *ledgerv1.RegisterModel, error) {
	m, err := r.API.Model(ctx, modelID, false)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("model %q on the ledger: %w", modelID, err)
	}
	index := m.GetModel().GetIndex()
	tx, err := r.Entry(ctx, head, index)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("registration of %q: %w", modelID, err)
	}
	rm := tx.Body.GetRegisterModel()
	if rm == nil || rm.GetModelId() != modelID {
		return 0, nil, nil, fmt.Errorf("log entry %d is not the registration of %q", index, modelID)
	}
	return index, tx, rm, nil
}
