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
	// Consistency proves that the log of size from is a prefix of the log
	// of size to (0 = the latest).
	Consistency(ctx context.Context, from, to uint64) (*ledgerv1.ConsistencyProof, error)
	// Model returns a registered model (and its verifying key if asked).
	Model(ctx context.Context, modelID string, withKey bool) (*ledgerv1.GetModelResponse, error)
	// Models lists the registered models by id.
	Models(ctx context.Context) ([]*ledgerv1.ModelRecord, error)
	// Request returns a request's receipt, reveal, proof and verdict status.
	Request(ctx context.Context, requestID string) (*ledgerv1.RequestRecord, error)
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
		if index >= cp.Size {
			return fmt.Errorf("log entry %d: %w (log size %d)", index, ErrNotFound, cp.Size)
		}
		raw := tx.Bucket(bTxs).Get(u64(index))
		if raw == nil {
			return fmt.Errorf("%w: log entry %d missing", ErrCorrupt, index)
		}
		nodes, err := proof.Inclusion(index, cp.Size)
		if err != nil {
			return err
		}
		hashes, err := fetchProof(tx, nodes)
		if err != nil {
			return err
		}
		e = &ledgerv1.Entry{Index: index, Tx: bytes.Clone(raw), LeafHash: hasher.HashLeaf(raw), Inclusion: hashes, Checkpoint: cp}
		return nil
	})
	return e, err
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
func (s *Store) Request(_ context.Context, id string) (r *ledgerv1.RequestRecord, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		var rj *Rejection
		r, rj = getRequest(tx, id)
		if rj != nil {
			if rj.Code == ledgerv1.Code_CODE_UNKNOWN_REQUEST {
				return fmt.Errorf("request %q: %w", id, ErrNotFound)
			}
			return rj
		}
		return nil
	})
	return r, err
}

// Requests lists requests newest first, optionally for one model.
func (s *Store) Requests(_ context.Context, q *ledgerv1.ListRequestsRequest) (out []*ledgerv1.RequestRecord, err error) {
	limit := int(q.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	before := q.GetBeforeIndex()
	err = s.view(func(tx *bolt.Tx) error {
		add := func(id []byte) error {
			r, rj := getRequest(tx, string(id))
			if rj != nil {
				return rj
			}
			out = append(out, r)
			return nil
		}
		if q.GetModelId() != "" {
			prefix := byModelKey(q.GetModelId(), 0)
			prefix = prefix[:len(prefix)-8]
			c := tx.Bucket(bByModel).Cursor()
			var k, v []byte
			if before == 0 {
				k, v = c.Seek(append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
				if k == nil {
					k, v = c.Last()
				} else {
					k, v = c.Prev()
				}
			} else if k, _ = c.Seek(byModelKey(q.GetModelId(), before)); k == nil {
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
		}
		c := tx.Bucket(bReceipts).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else if k, _ = c.Seek(u64(before)); k == nil {
			k, v = c.Last() // before is past every receipt
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
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

var _ = binary.BigEndian
