package federated

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/pixels"
)

// Dataset commitments. An owner commits to its samples with the root of an
// RFC 6962 Merkle tree (transparency-dev/merkle, as the ledger's log) over
// the samples' leaf hashes sorted in ascending order. The leaf data of a
// sample is "veil/federated/sample" 0x00, its label byte and its 784
// pixels. Sorting makes non-membership provable: a sample is absent when
// two adjacent leaves bracket its hash. Only the committer can make the
// tree; a verifier cannot check from the root that it is sorted (see
// docs/training.md).

var merkleHasher = rfc6962.New(crypto.SHA256)

const sampleDomain = "veil/federated/sample\x00"

// SampleLeaf returns the Merkle leaf hash of a labelled image.
func SampleLeaf(img *pixels.Image, label uint8) []byte {
	data := make([]byte, 0, len(sampleDomain)+1+pixels.Count)
	data = append(data, sampleDomain...)
	data = append(data, label)
	data = append(data, img[:]...)
	return merkleHasher.HashLeaf(data)
}

// DatasetTree is an owner's commitment tree: the sorted leaf hashes and
// every perfect-subtree node, from which inclusion proofs are read.
type DatasetTree struct {
	leaves [][]byte                  // sorted
	nodes  map[compact.NodeID][]byte // perfect subtrees
	root   []byte
}

// CommitDataset builds the commitment tree of a shard.
func CommitDataset(s *dataset.Set) (*DatasetTree, error) {
	if s.Len() == 0 {
		return nil, errors.New("commit dataset: no samples")
	}
	leaves := make([][]byte, s.Len())
	for i := range s.Images {
		leaves[i] = SampleLeaf(&s.Images[i], s.Labels[i])
	}
	slices.SortFunc(leaves, bytes.Compare)
	t := &DatasetTree{leaves: leaves, nodes: make(map[compact.NodeID][]byte, 2*len(leaves))}
	rf := &compact.RangeFactory{Hash: merkleHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(l, func(id compact.NodeID, h []byte) { t.nodes[id] = h }); err != nil {
			return nil, fmt.Errorf("commit dataset: %w", err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("commit dataset: %w", err)
	}
	t.root = root
	return t, nil
}

// Root returns the Merkle root (32 bytes).
func (t *DatasetTree) Root() []byte { return slices.Clone(t.root) }

// Size returns the number of samples.
func (t *DatasetTree) Size() uint64 { return uint64(len(t.leaves)) }

func (t *DatasetTree) inclusion(index uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, t.Size())
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, ok := t.nodes[id]
		if !ok {
			return nil, fmt.Errorf("node %d/%d missing", id.Level, id.Index)
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, merkleHasher.HashChildren)
}

// SampleProof proves that a sample is (Present) or is not in a committed
// dataset of Size samples. For a present sample, Index and Path prove its
// leaf; for an absent one, the leaves at Index and Index+1 (or the single
// boundary leaf) bracket its hash.
type SampleProof struct {
	Present bool
	Size    uint64
	// Leaves and their inclusion proofs: one for a present sample or a
	// boundary, two adjacent ones otherwise.
	Index  uint64
	Leaves [][]byte
	Paths  [][][]byte
}

// Prove returns a membership or non-membership proof for a sample.
func (t *DatasetTree) Prove(img *pixels.Image, label uint8) (*SampleProof, error) {
	h := SampleLeaf(img, label)
	k := sort.Search(len(t.leaves), func(i int) bool { return bytes.Compare(t.leaves[i], h) >= 0 })
	p := &SampleProof{Size: t.Size()}
	var idx []uint64
	switch {
	case k < len(t.leaves) && bytes.Equal(t.leaves[k], h):
		p.Present = true
		idx = []uint64{uint64(k)}
	case k == 0:
		idx = []uint64{0}
	case k == len(t.leaves):
		idx = []uint64{uint64(k - 1)}
	default:
		idx = []uint64{uint64(k - 1), uint64(k)}
	}
	p.Index = idx[0]
	for _, i := range idx {
		path, err := t.inclusion(i)
		if err != nil {
			return nil, fmt.Errorf("prove sample: %w", err)
		}
		p.Leaves = append(p.Leaves, t.leaves[i])
		p.Paths = append(p.Paths, path)
	}
	return p, nil
}

// VerifySample checks a proof against a committed root and size and
// returns whether the sample is in the dataset. An error means the proof
// is invalid (it proves neither).
func VerifySample(root []byte, size uint64, img *pixels.Image, label uint8, p *SampleProof) (bool, error) {
	if p == nil || p.Size != size || size == 0 || len(p.Leaves) != len(p.Paths) || len(p.Leaves) == 0 || len(p.Leaves) > 2 {
		return false, errors.New("verify sample: malformed proof")
	}
	for i, leaf := range p.Leaves {
		if err := proof.VerifyInclusion(merkleHasher, p.Index+uint64(i), size, leaf, p.Paths[i], root); err != nil {
			return false, fmt.Errorf("verify sample: leaf %d: %w", p.Index+uint64(i), err)
		}
	}
	h := SampleLeaf(img, label)
	if p.Present {
		if len(p.Leaves) != 1 || !bytes.Equal(p.Leaves[0], h) {
			return false, errors.New("verify sample: the proven leaf is not this sample")
		}
		return true, nil
	}
	switch {
	case len(p.Leaves) == 2:
		if !(bytes.Compare(p.Leaves[0], h) < 0 && bytes.Compare(h, p.Leaves[1]) < 0) {
			return false, errors.New("verify sample: the adjacent leaves do not bracket the sample")
		}
	case p.Index == 0 && bytes.Compare(h, p.Leaves[0]) < 0:
	case p.Index == size-1 && bytes.Compare(h, p.Leaves[0]) > 0:
	default:
		return false, errors.New("verify sample: the boundary leaf does not exclude the sample")
	}
	return false, nil
}

// SplitConfig describes how the training set is divided among owners.
type SplitConfig struct {
	Owners int
	// NonIID gives each owner mostly the digits of its group (Majority of
	// its samples); otherwise samples are dealt uniformly at random.
	NonIID   bool
	Majority float64
	Seed     uint64
}

// Split deals the samples of s to owners. Non-IID: the 10 digits are cut
// into Owners groups of consecutive digits (4 owners: 0-2, 3-5, 6-7, 8-9);
// a sample goes to the owner of its digit with probability Majority, else
// to another owner at random.
func Split(s *dataset.Set, cfg SplitConfig) ([]*dataset.Set, error) {
	if cfg.Owners < 2 || cfg.Owners > 10 {
		return nil, fmt.Errorf("split: %d owners, want 2..10", cfg.Owners)
	}
	if cfg.NonIID && !(cfg.Majority > 0 && cfg.Majority <= 1) {
		return nil, fmt.Errorf("split: majority %g not in (0, 1]", cfg.Majority)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x73706c6974))
	owner := make([]int, 10)
	for d := range owner {
		owner[d] = d * cfg.Owners / 10
	}
	out := make([]*dataset.Set, cfg.Owners)
	for i := range out {
		out[i] = &dataset.Set{}
	}
	for i, img := range s.Images {
		o := rng.IntN(cfg.Owners)
		if cfg.NonIID {
			o = owner[s.Labels[i]]
			if rng.Float64() >= cfg.Majority {
				o = (o + 1 + rng.IntN(cfg.Owners-1)) % cfg.Owners
			}
		}
		out[o].Images = append(out[o].Images, img)
		out[o].Labels = append(out[o].Labels, s.Labels[i])
	}
	for i, sh := range out {
		if sh.Len() == 0 {
			return nil, fmt.Errorf("split: owner %d got no samples", i)
		}
	}
	return out, nil
}

// SetDigest is the SHA-256 of a labelled set, in order (the validation
// set's digest on the ledger).
func SetDigest(s *dataset.Set) [32]byte {
	h := sha256.New()
	h.Write([]byte("veil/federated/set\x00"))
	for i := range s.Images {
		h.Write([]byte{s.Labels[i]})
		h.Write(s.Images[i][:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
