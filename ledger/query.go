package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	bolt "go.etcd.io/bbolt"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// ErrNotFound is returned (wrapped) by queries for missing records.
var ErrNotFound = errors.New("not found")

// API is the ledger as the rest of Veil sees it: the embedded node, a
// CometBFT node and the remote gRPC client all implement it.
type API interface {
	// Submit sends a signed transaction and waits until it is committed
	// (or rejected). A rejection is returned as a *Rejection error with
	// the reason code; the SubmitResponse is still filled in.
	Submit(ctx context.Context, tx []byte) (*ledgerv1.SubmitResponse, error)
	// Checkpoint returns the latest signed checkpoint.
	Checkpoint(ctx context.Context) (*ledgerv1.Checkpoint, error)
	// Entry returns logged transaction index with an inclusion proof
	// against the latest checkpoint.
	Entry(ctx context.Context, index uint64) (*ledgerv1.Entry, error)
	// EntryAt returns logged transaction index with an inclusion proof in
	// the tree of treeSize leaves (for a checkpoint the caller holds, such
	// as a quorum checkpoint); the entry's Checkpoint is then nil.
	EntryAt(ctx context.Context, index, treeSize uint64) (*ledgerv1.Entry, error)
	// ChainInfo describes the chain: its id, parameters, this node's key
	// and, when replicated, the genesis validators.
	ChainInfo(ctx context.Context) (*ledgerv1.ChainInfo, error)
	// Consistency proves that the log of size from is a prefix of the log
	// of size to (0 = the latest).
	Consistency(ctx context.Context, from, to uint64) (*ledgerv1.ConsistencyProof, error)
	// Model returns a registered model (and its verifying key if asked).
	Model(ctx context.Context, modelID string, withKey bool) (*ledgerv1.GetModelResponse, error)
	// Models lists the registered models by id.
	Models(ctx context.Context) ([]*ledgerv1.ModelRecord, error)
	// Request returns a request's receipt, reveal, proof and verdict
	// status, by its key (RequestKey).
	Request(ctx context.Context, key []byte) (*ledgerv1.RequestRecord, error)
	// Requests lists requests, newest first (see ListRequestsRequest).
	Requests(ctx context.Context, q *ledgerv1.ListRequestsRequest) ([]*ledgerv1.RequestRecord, error)
	// Setup returns a setup ceremony phase's contribution chain.
	Setup(ctx context.Context, ceremonyID string, phase uint32) (*ledgerv1.SetupRecord, error)
	// Rejections lists transactions this node rejected recently, newest
	// first (node-local, not part of the ledger).
	Rejections(ctx context.Context) ([]*ledgerv1.Rejected, error)
}

// Store implements the read side of API directly; drivers add Submit.

// Checkpoint returns the latest committed checkpoint.
func (s *Store) Checkpoint(context.Context) (cp *ledgerv1.Checkpoint, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		cp, err = s.checkpointIn(tx)
		return err
	})
	return cp, err
}

// Entry returns a logged transaction and its inclusion proof against the
// latest checkpoint.
func (s *Store) Entry(_ context.Context, index uint64) (e *ledgerv1.Entry, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		cp, err := s.checkpointIn(tx)
		if err != nil {
			return err
		}
		if e, err = entryIn(tx, index, cp.Size); err != nil {
			return err
		}
		e.Checkpoint = cp
		return nil
	})
	return e, err
}

// EntryAt returns a logged transaction and its inclusion proof in the tree
// of treeSize leaves (at most the current size).
func (s *Store) EntryAt(_ context.Context, index, treeSize uint64) (e *ledgerv1.Entry, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		st, err := readState(tx)
		if err != nil {
			return err
		}
		if treeSize == 0 || treeSize > st.size {
			return fmt.Errorf("tree size %d: the log has %d entries", treeSize, st.size)
		}
		e, err = entryIn(tx, index, treeSize)
		return err
	})
	return e, err
}

func entryIn(tx *bolt.Tx, index, size uint64) (*ledgerv1.Entry, error) {
	if index >= size {
		return nil, fmt.Errorf("log entry %d: %w (log size %d)", index, ErrNotFound, size)
	}
	raw := tx.Bucket(bTxs).Get(u64(index))
	if raw == nil {
		return nil, fmt.Errorf("%w: log entry %d missing", ErrCorrupt, index)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes, err := fetchProof(tx, nodes)
	if err != nil {
		return nil, err
	}
	return &ledgerv1.Entry{Index: index, Tx: bytes.Clone(raw), LeafHash: hasher.HashLeaf(raw), Inclusion: hashes}, nil
}

// CheckpointAt returns the log head after block height, signed by this
// node (the history is node-local; the replicated part is its content).
func (s *Store) CheckpointAt(height uint64) (cp *ledgerv1.Checkpoint, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bHeads).Get(u64(height))
		if len(v) != 8+32+32 {
			return fmt.Errorf("checkpoint at height %d: %w", height, ErrNotFound)
		}
		cp = SignCheckpoint(s.key, s.origin, binary.BigEndian.Uint64(v[:8]), bytes.Clone(v[8:40]), height, bytes.Clone(v[40:]))
		return nil
	})
	return cp, err
}

// ChainInfo implements API for a single node (no validators).
func (s *Store) ChainInfo(context.Context) (*ledgerv1.ChainInfo, error) {
	h, _, _, err := s.Head()
	if err != nil {
		return nil, err
	}
	return &ledgerv1.ChainInfo{ChainId: s.chainID, Origin: s.origin, NodeKey: s.PublicKey(), Height: h, Params: s.params.Proto()}, nil
}

// Consistency returns a consistency proof between two log sizes.
func (s *Store) Consistency(_ context.Context, from, to uint64) (p *ledgerv1.ConsistencyProof, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		cp, err := s.checkpointIn(tx)
		if err != nil {
			return err
		}
		if to == 0 {
			to = cp.Size
		}
		if to != cp.Size {
			// Only the latest size has a signed checkpoint here; older
			// checkpoints are the caller's to keep.
			return fmt.Errorf("consistency proof to size %d: only the latest size %d is served", to, cp.Size)
		}
		if from > to {
			return fmt.Errorf("consistency proof from %d to %d: from is larger", from, to)
		}
		nodes, err := proof.Consistency(from, to)
		if err != nil {
			return err
		}
		hashes, err := fetchProof(tx, nodes)
		if err != nil {
			return err
		}
		p = &ledgerv1.ConsistencyProof{FromSize: from, ToSize: to, Hashes: hashes, Checkpoint: cp}
		return nil
	})
	return p, err
}

func fetchProof(tx *bolt.Tx, nodes proof.Nodes) ([][]byte, error) {
	b := tx.Bucket(bNodes)
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h := b.Get(nodeKey(id))
		if h == nil {
			return nil, fmt.Errorf("%w: Merkle node %d/%d missing", ErrCorrupt, id.Level, id.Index)
		}
		hashes[i] = bytes.Clone(h)
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// Model returns a registered model.
func (s *Store) Model(_ context.Context, id string, withKey bool) (r *ledgerv1.GetModelResponse, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		m, rj := getModel(tx, id)
		if rj != nil {
			if rj.Code == ledgerv1.Code_CODE_UNKNOWN_MODEL {
				return fmt.Errorf("model %q: %w", id, ErrNotFound)
			}
			return rj
		}
		r = &ledgerv1.GetModelResponse{Model: m}
		if withKey {
			r.VerifyingKey = bytes.Clone(get(tx, bVKs, m.VerifyingKeyHash))
		}
		return nil
	})
	return r, err
}

// Models lists every registered model, ordered by id.
func (s *Store) Models(context.Context) (out []*ledgerv1.ModelRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bModels).ForEach(func(k, _ []byte) error {
			m, rj := getModel(tx, string(k))
			if rj != nil {
				return rj
			}
			out = append(out, m)
			return nil
		})
	})
	return out, err
}

// Request returns one request's record.
func (s *Store) Request(_ context.Context, key []byte) (r *ledgerv1.RequestRecord, err error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("request key of %d bytes, want 32: %w", len(key), ErrNotFound)
	}
	err = s.view(func(tx *bolt.Tx) error {
		var rj *Rejection
		r, rj = getRequest(tx, key)
		if rj != nil {
			if rj.Code == ledgerv1.Code_CODE_UNKNOWN_REQUEST {
				return fmt.Errorf("request %x: %w", key[:8], ErrNotFound)
			}
			return rj
		}
		return nil
	})
	return r, err
}

// Requests lists requests newest first, optionally for one model and in
// one status. Revealed requests of one model (what a prover pages through)
// come from an index of exactly those, ordered by reveal index, and
// before_index then bounds the reveal index.
func (s *Store) Requests(_ context.Context, q *ledgerv1.ListRequestsRequest) (out []*ledgerv1.RequestRecord, err error) {
	limit := int(q.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	before := q.GetBeforeIndex()
	want := q.GetStatus()
	err = s.view(func(tx *bolt.Tx) error {
		add := func(key []byte) error {
			r, rj := getRequest(tx, key)
			if rj != nil {
				return rj
			}
			if want == ledgerv1.RequestStatus_REQUEST_STATUS_UNSPECIFIED || r.Status == want {
				out = append(out, r)
			}
			return nil
		}
		bucket, prefix := bReceipts, []byte(nil)
		if q.GetModelId() != "" {
			bucket, prefix = bByModel, byModelKey(q.GetModelId(), 0)
			prefix = prefix[:len(prefix)-8]
			if want == ledgerv1.RequestStatus_REQUEST_STATUS_REVEALED {
				bucket = bPending
			}
		}
		c := tx.Bucket(bucket).Cursor()
		start := append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		if before != 0 {
			start = append(bytes.Clone(prefix), u64(before)...)
		}
		k, _ := c.Seek(start)
		var v []byte
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			if err := add(unseal(v)); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// Setup returns the contribution chain of a ceremony phase.
func (s *Store) Setup(_ context.Context, ceremony string, phase uint32) (r *ledgerv1.SetupRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		r = &ledgerv1.SetupRecord{}
		ok, err := getProto(tx, bSetup, setupKey(ceremony, phase), r)
		if err == nil && !ok {
			err = fmt.Errorf("setup %q phase %d: %w", ceremony, phase, ErrNotFound)
		}
		return err
	})
	return r, err
}

// Tx returns the raw transaction at a log index.
func (s *Store) Tx(index uint64) (raw []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTxs).Get(u64(index))
		if v == nil {
			return fmt.Errorf("log entry %d: %w", index, ErrNotFound)
		}
		raw = bytes.Clone(v)
		return nil
	})
	return raw, err
}

// Head returns the committed height, log size and app hash.
func (s *Store) Head() (height, size uint64, appHash []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		st, err := readState(tx)
		if err != nil {
			return err
		}
		root, err := rootOf(st.rng)
		if err != nil {
			return err
		}
		height, size, appHash = st.height, st.size, AppHash(st.size, root, st.stateHash)
		return nil
	})
	return
}

// VerifyInclusion checks an entry offline: the checkpoint is signed by
// trusted (nil: by the key it names), and the entry's transaction is
// included at its index in the checkpoint's tree.
func VerifyInclusion(e *ledgerv1.Entry, trusted []byte) error {
	if e == nil || e.Checkpoint == nil {
		return errors.New("entry has no checkpoint")
	}
	if err := VerifyCheckpoint(e.Checkpoint, trusted); err != nil {
		return err
	}
	leaf := hasher.HashLeaf(e.Tx)
	if len(e.LeafHash) != 0 && !bytes.Equal(leaf, e.LeafHash) {
		return errors.New("leaf hash does not match the transaction")
	}
	if err := proof.VerifyInclusion(hasher, e.Index, e.Checkpoint.Size, leaf, e.Inclusion, e.Checkpoint.RootHash); err != nil {
		return fmt.Errorf("inclusion proof: %w", err)
	}
	return nil
}

// VerifyConsistency checks that old (a checkpoint the caller kept) is a
// prefix of p's checkpoint, both signed by trusted.
func VerifyConsistency(old *ledgerv1.Checkpoint, p *ledgerv1.ConsistencyProof, trusted []byte) error {
	if err := VerifyCheckpoint(old, trusted); err != nil {
		return fmt.Errorf("old checkpoint: %w", err)
	}
	if err := VerifyCheckpoint(p.GetCheckpoint(), trusted); err != nil {
		return fmt.Errorf("new checkpoint: %w", err)
	}
	if p.FromSize != old.Size || p.ToSize != p.Checkpoint.Size {
		return errors.New("consistency proof sizes do not match the checkpoints")
	}
	return proof.VerifyConsistency(hasher, old.Size, p.Checkpoint.Size, p.Hashes, old.RootHash, p.Checkpoint.RootHash)
}
