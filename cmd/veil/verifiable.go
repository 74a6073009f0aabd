package main

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
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
)

// proofBatch is the circuit batch size of a verifiable deployment: the k-1
// challenges of one request with k = 4 blocks.
const proofBatch = 3

// deployment is a model made verifiable: committed, with Groth16 keys, and
// registered on a ledger, plus the server's receipt recorder and prover.
type deployment struct {
	commitment zk.Commitment
	serverKey  ed25519.PrivateKey
	recorder   *server.LedgerRecorder
	proofs     *server.ProofService
}

// deploy commits to the model (creating its salt if needed), loads or makes
// its proving keys (a ceremony of one when none are cached), and registers
// it on the ledger unless it is registered already with this commitment.
func (g *globalOptions) deploy(ctx context.Context, mf *model.File, api ledger.API, chainID string, serverKey ed25519.PrivateKey, log *slog.Logger) (*deployment, error) {
	quietGnark()
	salt, _, err := g.loadSalt(mf, "", true)
	if err != nil {
		return nil, err
	}
	m := mf.Model
	pk, err := g.keys(ctx, m, proofBatch, true)
	if err != nil {
		return nil, err
	}
	prover, err := zk.NewProver(m, salt, pk)
	if err != nil {
		return nil, err
	}
	c := prover.Commitment()
	d := &deployment{commitment: c, serverKey: serverKey}
	reg, err := api.Model(ctx, m.Name, false)
	switch {
	case err == nil:
		if !bytes.Equal(reg.GetModel().GetCommitment(), c[:]) {
			return nil, fmt.Errorf("model %q is registered on the ledger with another commitment (%x)", m.Name, reg.GetModel().GetCommitment())
		}
	case errors.Is(err, ledger.ErrNotFound):
		vkb, err := pk.VK.MarshalBinary()
		if err != nil {
			return nil, err
		}
		spec, err := circuits.SpecOf(m)
		if err != nil {
			return nil, err
		}
		id := spec.ID()
		tx, err := ledger.SignTx(serverKey, &ledgerv1.TxBody{ChainId: chainID, Tx: &ledgerv1.TxBody_RegisterModel{RegisterModel: &ledgerv1.RegisterModel{
			ModelId: m.Name, Architecture: fmt.Sprintf("%s circuit %x", model.ArchitectureOf(m).String(), id[:8]), Commitment: c[:], VerifyingKey: vkb,
			OutputsPerChallenge: uint32(m.Classes),
		}}})
		if err != nil {
			return nil, err
		}
		if _, err := api.Submit(ctx, tx); err != nil {
			return nil, fmt.Errorf("register model: %w", err)
		}
	default:
		return nil, fmt.Errorf("look up model on the ledger: %w", err)
	}
	d.recorder = &server.LedgerRecorder{Ledger: api, ChainID: chainID, Key: serverKey, Log: log}
	d.proofs = &server.ProofService{Ledger: api, ChainID: chainID, Key: serverKey, Log: log,
		Provers: map[string]server.ModelProver{m.Name: {Prover: prover, Batch: pk.Batch()}}}
	return d, nil
}
