package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
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
}

// Pin is what a party may require of a registration beyond its model id
// (model ids are first come, first served).
type Pin struct {
	Commitment *zk.Commitment
	OwnerKey   ed25519.PublicKey
	ServerKey  ed25519.PublicKey
}

// ReadRegistration finds model modelID's registration in the log verified
// by head and checks it: the spec parses, the verifying key is for the
// spec's circuit and batch (zk.CheckKeyForSpec), and the pin holds.
func ReadRegistration(ctx context.Context, r *trust.Reader, head *ledgerv1.Checkpoint, modelID string, pin Pin) (*Registration, error) {
	m, err := r.API.Model(ctx, modelID, false)
	if err != nil {
		return nil, fmt.Errorf("model %q on the ledger: %w", modelID, err)
	}
	index := m.GetModel().GetIndex()
	tx, err := r.Entry(ctx, head, index)
	if err != nil {
		return nil, fmt.Errorf("registration of %q: %w", modelID, err)
	}
	rm := tx.Body.GetRegisterModel()
	if rm == nil || rm.GetModelId() != modelID {
		return nil, fmt.Errorf("log entry %d is not the registration of %q", index, modelID)
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
	if err := pin.check(reg); err != nil {
		return nil, fmt.Errorf("registration of %q: %w", modelID, err)
	}
	return reg, nil
}

func (p Pin) check(r *Registration) error {
	switch {
	case p.Commitment != nil && *p.Commitment != r.Commitment:
		return fmt.Errorf("registered with commitment %s, pinned %s", r.Commitment, p.Commitment)
	case p.OwnerKey != nil && !bytes.Equal(p.OwnerKey, r.OwnerKey):
		return errors.New("registered by another owner key than the pinned one")
	case p.ServerKey != nil && !bytes.Equal(p.ServerKey, r.ServerKey):
		return errors.New("registered with another server key than the pinned one")
	}
	return nil
}
