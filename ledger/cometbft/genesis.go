package cometbft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cometbft/cometbft/types"
	"google.golang.org/protobuf/encoding/protojson"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// The Veil part of a CometBFT genesis (its app state) is the chain's
// consensus parameters, ledger.ChainParams in protobuf JSON with the proto
// field names, so that every validator applies the same rules and starts
// from the same balances.
func genesisAppState(p ledger.Params) (json.RawMessage, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(p.Proto())
	if err != nil {
		return nil, err
	}
	// Re-indent through encoding/json: protojson's whitespace is
	// deliberately unstable, a genesis file should not be.
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// paramsOf reads the chain parameters from a genesis document. A genesis
// without them (written by an older Veil) is refused rather than given
// defaults that another validator might not share.
func paramsOf(gen *types.GenesisDoc) (ledger.Params, error) {
	if len(gen.AppState) == 0 {
		return ledger.Params{}, errors.New("genesis has no Veil app state (chain parameters): write the testnet again")
	}
	var st ledgerv1.ChainParams
	if err := protojson.Unmarshal(gen.AppState, &st); err != nil {
		return ledger.Params{}, fmt.Errorf("genesis app state: %w", err)
	}
	p, err := ledger.ParamsFromProto(&st)
	if err != nil {
		return ledger.Params{}, fmt.Errorf("genesis app state: %w", err)
	}
	return p, nil
}

// validatorsOf lists a genesis document's validators.
func validatorsOf(gen *types.GenesisDoc) []*ledgerv1.Validator {
	out := make([]*ledgerv1.Validator, 0, len(gen.Validators))
	for _, v := range gen.Validators {
		out = append(out, &ledgerv1.Validator{PubKey: v.PubKey.Bytes(), Power: v.Power})
	}
	return out
}

// ChainInfo implements ledger.API: the store's answer plus the genesis
// validators, whose quorum signs checkpoints (see QuorumCheckpoint).
func (n *Node) ChainInfo(ctx context.Context) (*ledgerv1.ChainInfo, error) {
	ci, err := n.Store.ChainInfo(ctx)
	if err != nil {
		return nil, err
	}
	ci.Validators = validatorsOf(n.genesis)
	return ci, nil
}

// QuorumCheckpoint returns the latest log head that a quorum of validators
// signed: the header of the latest committed height H carries the app hash
// of height H-1, and its commit holds the validators' signatures. The
// checkpoint is that of height H-1 (signed by this node too, which adds
// nothing: what counts is the commit).
func (n *Node) QuorumCheckpoint(ctx context.Context) (*ledgerv1.QuorumCheckpoint, error) {
	h := n.node.BlockStore().Height()
	if h < 2 {
		return nil, fmt.Errorf("no quorum checkpoint before height 2 (at %d): %w", h, ledger.ErrNotFound)
	}
	commit, err := n.client.Commit(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("commit of height %d: %w", h, err)
	}
	vals, err := n.client.Validators(ctx, &h, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("validators of height %d: %w", h, err)
	}
	vs, err := types.ValidatorSetFromExistingValidators(vals.Validators)
	if err != nil {
		return nil, fmt.Errorf("validators of height %d: %w", h, err)
	}
	vsp, err := vs.ToProto()
	if err != nil {
		return nil, err
	}
	cp, err := n.Store.CheckpointAt(uint64(h - 1))
	if err != nil {
		return nil, err
	}
	shb, err := commit.SignedHeader.ToProto().Marshal()
	if err != nil {
		return nil, err
	}
	vsb, err := vsp.Marshal()
	if err != nil {
		return nil, err
	}
	return &ledgerv1.QuorumCheckpoint{Checkpoint: cp, SignedHeader: shb, ValidatorSet: vsb}, nil
}
