package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// DeployOptions say what to deploy where.
type DeployOptions struct {
	Model *model.Model
	Salt  zk.Salt
	Keys  *zk.ProvingKey // the model's Groth16 keys (their batch is the proof batch)
	// Ledger and ChainID: where the model is registered and its requests
	// recorded.
	Ledger  ledger.API
	ChainID string
	// Owner registers the model; Server co-signs the registration and
	// signs receipts and proofs. They may be the same key.
	Owner, Server ed25519.PrivateKey
	Log           *slog.Logger
	// CeremonyID names the sealed ledger ceremony Keys come from (the
	// registration must name it on a chain with a phase 1); empty for keys
	// the owner made (INSECURE).
	CeremonyID string
	// Offer, when set, is published (market.go) once the model is
	// registered: the server key bonds the stake from its balance.
	Offer *OfferOptions
}

// Deployment is a model made verifiable: committed, registered, with the
// server's receipt recorder and prover ready to serve it.
type Deployment struct {
	Commitment zk.Commitment
	Spec       *circuits.Spec
	Recorder   *Recorder
	Prover     *Prover
	// Registered is true when this call registered the model, false when
	// it was registered already (with exactly this commitment, spec, key
	// and owner and server keys).
	Registered bool
	// Offer is the model's offer on the ledger, when DeployOptions.Offer
	// published one.
	Offer *ledgerv1.OfferRecord
}

// Deploy commits to the model, registers it on the ledger (the server key
// co-signs), or checks that an existing registration of the model id is
// exactly this deployment's, and returns its recorder and prover.
func Deploy(ctx context.Context, o DeployOptions) (*Deployment, error) {
	m := o.Model
	spec, err := circuits.SpecOf(m)
	if err != nil {
		return nil, err
	}
	prover, err := zk.NewProver(m, o.Salt, o.Keys)
	if err != nil {
		return nil, err
	}
	vkb, err := o.Keys.VK.MarshalBinary()
	if err != nil {
		return nil, err
	}
	d := &Deployment{Commitment: prover.Commitment(), Spec: spec}
	owner := ledger.Signer{ChainID: o.ChainID, Key: o.Owner}
	server := ledger.Signer{ChainID: o.ChainID, Key: o.Server}
	id := spec.ID()
	reg, err := o.Ledger.Model(ctx, m.Name, false)
	switch {
	case err == nil:
		r := reg.GetModel()
		vkHash := o.Keys.VK.Hash()
		switch {
		case !bytes.Equal(r.GetCommitment(), d.Commitment[:]):
			return nil, fmt.Errorf("model %q is registered on the ledger with another commitment (%x)", m.Name, r.GetCommitment())
		case !bytes.Equal(r.GetSpecId(), id[:]):
			return nil, fmt.Errorf("model %q is registered with another spec (%x)", m.Name, r.GetSpecId())
		case !bytes.Equal(r.GetVerifyingKeyHash(), vkHash[:]):
			return nil, fmt.Errorf("model %q is registered with another verifying key (%x), not these keys' (%x)", m.Name, prefix(r.GetVerifyingKeyHash()), vkHash[:8])
		case !bytes.Equal(r.GetOwnerKey(), owner.Public()) || !bytes.Equal(r.GetServerKey(), server.Public()):
			return nil, fmt.Errorf("model %q is registered by another owner or for another server key", m.Name)
		case int(r.GetProofBatch()) != o.Keys.Batch():
			return nil, fmt.Errorf("model %q is registered with %d challenges per proof, these keys prove %d", m.Name, r.GetProofBatch(), o.Keys.Batch())
		}
	case errors.Is(err, ledger.ErrNotFound):
		tx, err := owner.RegisterModel(&ledgerv1.RegisterModel{
			ModelId: m.Name, Architecture: fmt.Sprintf("%s circuit %x", model.ArchitectureOf(m), id[:8]), Commitment: d.Commitment[:],
			VerifyingKey: vkb, OutputsPerChallenge: uint32(m.Classes), Spec: spec.Canonical(), ProofBatch: uint32(o.Keys.Batch()),
			CeremonyId: o.CeremonyID,
		}, o.Server)
		if err != nil {
			return nil, err
		}
		if _, err := submitOnce(ctx, o.Ledger, tx); err != nil {
			return nil, fmt.Errorf("register model: %w", err)
		}
		d.Registered = true
	default:
		return nil, fmt.Errorf("look up model on the ledger: %w", err)
	}
	adm := &Admission{}
	d.Recorder = &Recorder{Ledger: o.Ledger, Signer: server, Batch: map[string]int{m.Name: o.Keys.Batch()}, Log: o.Log, Admission: adm}
	if o.Offer != nil {
		offer, err := PublishOffer(ctx, o.Ledger, server, m.Name, *o.Offer)
		if err != nil {
			return nil, err
		}
		d.Offer = offer
		d.Recorder.Prices = map[string]uint64{m.Name: offer.GetPrice()}
	}
	d.Prover = &Prover{Ledger: o.Ledger, Signer: server, Log: o.Log, Models: map[string]ModelProver{m.Name: {Prover: prover, Batch: o.Keys.Batch()}}, Admission: adm}
	return d, nil
}

// LoadOrCreateIdentity reads a party's ed25519 ledger identity from path,
// or makes one (mode 0600).
func LoadOrCreateIdentity(path string) (ed25519.PrivateKey, error) {
	key, _, err := ledger.LoadOrCreateNodeKey(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return key, nil
}

// Combine merges the recorders and provers of deployments that share a
// ledger and a server key (one server serving several models).
func Combine(deps []*Deployment) (*Recorder, *Prover) {
	adm := &Admission{}
	r := &Recorder{Batch: map[string]int{}, Admission: adm}
	p := &Prover{Models: map[string]ModelProver{}, Admission: adm}
	for _, d := range deps {
		r.Ledger, r.Signer, r.Log, r.Sync = d.Recorder.Ledger, d.Recorder.Signer, d.Recorder.Log, d.Recorder.Sync
		for id, b := range d.Recorder.Batch {
			r.Batch[id] = b
		}
		for id, p := range d.Recorder.Prices {
			if r.Prices == nil {
				r.Prices = map[string]uint64{}
			}
			r.Prices[id] = p
		}
		p.Ledger, p.Signer, p.Log, p.Linger = d.Prover.Ledger, d.Prover.Signer, d.Prover.Log, d.Prover.Linger
		for id, m := range d.Prover.Models {
			p.Models[id] = m
		}
	}
	return r, p
}

// prefix is the first bytes of b, for messages (b may come from a node and
// be of any length).
func prefix(b []byte) []byte { return b[:min(8, len(b))] }
