package trust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	"github.com/cometbft/cometbft/types"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// Anchor is what a party pins about a ledger.
type Anchor struct {
	ChainID string
	// NodeKey is the checkpoint key of a single node (an embedded
	// ledger). Whoever runs that node can lie about everything except
	// signatures and proofs it cannot forge; pin it only for a node you
	// trust or run yourself.
	NodeKey ed25519.PublicKey
	// Validators is the genesis validator set of a replicated chain: a
	// head counts only when validators holding more than two thirds of
	// this set's power signed it.
	Validators []*ledgerv1.Validator
}

// Validate checks that exactly one kind of trust is pinned.
func (a Anchor) Validate() error {
	switch {
	case a.ChainID == "":
		return errors.New("ledger anchor: no chain id")
	case len(a.NodeKey) != 0 && len(a.Validators) != 0:
		return errors.New("ledger anchor: pin a node key or a validator set, not both")
	case len(a.Validators) != 0:
		for _, v := range a.Validators {
			if len(v.GetPubKey()) != ed25519.PublicKeySize || v.GetPower() <= 0 {
				return errors.New("ledger anchor: a validator needs an ed25519 key and a positive power")
			}
		}
		return nil
	case len(a.NodeKey) != ed25519.PublicKeySize:
		return errors.New("ledger anchor: no node key (32 bytes) and no validator set")
	}
	return nil
}

// Replicated reports whether the anchor is a validator set.
func (a Anchor) Replicated() bool { return len(a.Validators) != 0 }

// quorumSource is implemented by ledger clients that can fetch quorum
// checkpoints (the gRPC client and the CometBFT node).
type quorumSource interface {
	QuorumCheckpoint(ctx context.Context) (*ledgerv1.QuorumCheckpoint, error)
}

// Reader reads a ledger through an Anchor.
type Reader struct {
	API    ledger.API
	Anchor Anchor
}

// Head returns the latest log head that the anchor vouches for.
func (r *Reader) Head(ctx context.Context) (*ledgerv1.Checkpoint, error) {
	if err := r.Anchor.Validate(); err != nil {
		return nil, err
	}
	if !r.Anchor.Replicated() {
		cp, err := r.API.Checkpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger head: %w", err)
		}
		if err := ledger.VerifyCheckpoint(cp, r.Anchor.NodeKey); err != nil {
			return nil, fmt.Errorf("ledger head: %w", err)
		}
		if cp.GetOrigin() != ledger.Origin(r.Anchor.ChainID) {
			return nil, fmt.Errorf("ledger head is for %q, not chain %q", cp.GetOrigin(), r.Anchor.ChainID)
		}
		return cp, nil
	}
	q, ok := r.API.(quorumSource)
	if !ok {
		return nil, errors.New("ledger head: this ledger connection cannot fetch quorum checkpoints")
	}
	qc, err := q.QuorumCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger head: %w", err)
	}
	if err := VerifyQuorumCheckpoint(qc, r.Anchor.ChainID, r.Anchor.Validators); err != nil {
		return nil, fmt.Errorf("ledger head: %w", err)
	}
	return qc.GetCheckpoint(), nil
}

// VerifyQuorumCheckpoint checks that more than two thirds of the voting
// power of validators signed (in a CometBFT commit) a header whose app hash
// commits to qc's checkpoint. The validator set must be exactly the pinned
// one: Veil chains do not change their validators.
func VerifyQuorumCheckpoint(qc *ledgerv1.QuorumCheckpoint, chainID string, validators []*ledgerv1.Validator) (err error) {
	// CometBFT's proto conversions dereference fields of malformed input
	// (a validator without a key, say): a hostile node's bytes must be an
	// error here, never a panic.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("quorum checkpoint: malformed: %v", r)
		}
	}()
	cp := qc.GetCheckpoint()
	if cp == nil {
		return errors.New("quorum checkpoint without a checkpoint")
	}
	var shp cmtproto.SignedHeader
	if err := shp.Unmarshal(qc.GetSignedHeader()); err != nil {
		return fmt.Errorf("quorum checkpoint: signed header: %w", err)
	}
	sh, err := types.SignedHeaderFromProto(&shp)
	if err != nil {
		return fmt.Errorf("quorum checkpoint: signed header: %w", err)
	}
	if err := sh.ValidateBasic(chainID); err != nil {
		return fmt.Errorf("quorum checkpoint: signed header: %w", err)
	}
	var vsp cmtproto.ValidatorSet
	if err := vsp.Unmarshal(qc.GetValidatorSet()); err != nil {
		return fmt.Errorf("quorum checkpoint: validator set: %w", err)
	}
	vals, err := types.ValidatorSetFromProto(&vsp)
	if err != nil {
		return fmt.Errorf("quorum checkpoint: validator set: %w", err)
	}
	if !bytes.Equal(vals.Hash(), sh.ValidatorsHash) {
		return errors.New("quorum checkpoint: the validator set is not the header's")
	}
	if err := sameValidators(vals, validators); err != nil {
		return fmt.Errorf("quorum checkpoint: %w", err)
	}
	if err := vals.VerifyCommitLight(chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return fmt.Errorf("quorum checkpoint: commit: %w", err)
	}
	switch {
	case cp.GetOrigin() != ledger.Origin(chainID):
		return fmt.Errorf("quorum checkpoint is for %q, not chain %q", cp.GetOrigin(), chainID)
	case cp.GetHeight()+1 != uint64(sh.Height):
		return fmt.Errorf("quorum checkpoint of height %d under a header of height %d", cp.GetHeight(), sh.Height)
	case !bytes.Equal(ledger.AppHash(cp.GetSize(), cp.GetRootHash(), cp.GetStateHash()), sh.AppHash):
		return errors.New("quorum checkpoint: the validators signed another app hash")
	}
	return nil
}

func sameValidators(vals *types.ValidatorSet, pinned []*ledgerv1.Validator) error {
	if vals.Size() != len(pinned) {
		return fmt.Errorf("%d validators, %d pinned", vals.Size(), len(pinned))
	}
	for _, p := range pinned {
		_, v := vals.GetByAddress(types.Address(addressOf(p.GetPubKey())))
		if v == nil || !bytes.Equal(v.PubKey.Bytes(), p.GetPubKey()) || v.VotingPower != p.GetPower() {
			return fmt.Errorf("validator %x is not in the signed set with power %d", p.GetPubKey()[:8], p.GetPower())
		}
	}
	return nil
}

var hasher = rfc6962.DefaultHasher

// Entry returns log entry index, checked against head (a head from Head):
// its inclusion proof in head's tree and the ledger's stateless checks of
// its transaction.
func (r *Reader) Entry(ctx context.Context, head *ledgerv1.Checkpoint, index uint64) (*ledger.Tx, error) {
	if index >= head.GetSize() {
		return nil, fmt.Errorf("log entry %d is beyond the verified head (%d entries)", index, head.GetSize())
	}
	e, err := r.API.EntryAt(ctx, index, head.GetSize())
	if err != nil {
		return nil, fmt.Errorf("log entry %d: %w", index, err)
	}
	if e.GetIndex() != index {
		return nil, fmt.Errorf("asked for log entry %d, got %d", index, e.GetIndex())
	}
	if err := proof.VerifyInclusion(hasher, index, head.GetSize(), hasher.HashLeaf(e.GetTx()), e.GetInclusion(), head.GetRootHash()); err != nil {
		return nil, fmt.Errorf("log entry %d is not in the verified log: %w", index, err)
	}
	return ledger.ParseTx(r.Anchor.ChainID, e.GetTx())
}

// AnchorFromGenesis reads a CometBFT genesis file (as `veil ledger testnet`
// writes it): its chain id and its validator set.
func AnchorFromGenesis(path string) (Anchor, error) {
	gen, err := types.GenesisDocFromFile(path)
	if err != nil {
		return Anchor{}, fmt.Errorf("read genesis: %w", err)
	}
	a := Anchor{ChainID: gen.ChainID}
	for _, v := range gen.Validators {
		a.Validators = append(a.Validators, &ledgerv1.Validator{PubKey: v.PubKey.Bytes(), Power: v.Power})
	}
	return a, a.Validate()
}
