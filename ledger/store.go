package ledger

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"os"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Bucket names. State buckets feed the state hash; log buckets are covered
// by the Merkle root.
var (
	bMeta     = []byte("meta")     // key -> value, see the meta keys below
	bTxs      = []byte("txs")      // log index (8 bytes BE) -> SignedTx bytes
	bNodes    = []byte("nodes")    // level (1) || index (8) -> Merkle node hash
	bSeen     = []byte("seen")     // body hash -> tx hash || log index
	bModels   = []byte("models")   // model id -> ModelRecord
	bVKs      = []byte("vks")      // verifying key hash -> verifying key
	bRequests = []byte("requests") // request key -> RequestRecord
	bReveals  = []byte("reveals")  // request key -> concatenated challenge images
	bByModel  = []byte("bymodel")  // len(model id) || model id || receipt index -> request key
	bReceipts = []byte("receipts") // receipt log index -> request key
	bPending  = []byte("pending")  // len(model id) || model id || reveal index -> request key, revealed and not proven
	bSetup    = []byte("setup")    // ceremony id || 0 || phase -> SetupRecord
	bHeads    = []byte("heads")    // height -> log size || root || state hash (node-local history for old checkpoints)

	allBuckets = [][]byte{bMeta, bTxs, bNodes, bSeen, bModels, bVKs, bRequests, bReveals, bByModel, bReceipts, bPending, bSetup, bHeads,
		bAccounts, bOffers, bEscrows, bDue, bDisputes, bMarket}

	kChainID    = []byte("chain_id")
	kHeight     = []byte("height")
	kSize       = []byte("size")
	kRange      = []byte("range")
	kStateHash  = []byte("state_hash")
	kCheckpoint = []byte("checkpoint")
	kParams     = []byte("params")
)

var hasher = rfc6962.New(crypto.SHA256)

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// ErrCorrupt is returned (wrapped) by Open when the database file is damaged.
var ErrCorrupt = errors.New("ledger database is corrupted")

// Options configure a Store.
type Options struct {
	// ChainID names the ledger; transactions for another chain are rejected.
	ChainID string
	// Verifier checks challenge proofs. It is wrapped in a VerifyCache.
	Verifier ProofVerifier
	// SigningKey signs checkpoints (the node key).
	SigningKey ed25519.PrivateKey
	// Disputes checks fraud proofs (ledger/heverify); nil: this node
	// refuses disputes (CODE_DISPUTES_UNSUPPORTED), so every validator of a
	// chain with offers must have one.
	Disputes DisputeVerifier
	// Ceremony verifies setup contributions (ledger/zkverify); nil: this
	// node refuses ceremony transactions that need verification
	// (CODE_CEREMONY_UNSUPPORTED), so every validator of a chain with a
	// phase 1 must have one.
	Ceremony CeremonyVerifier
	// Params are the chain's consensus parameters. They are stored when
	// the store is created; the zero value means DefaultParams for a new
	// store and the stored ones for an existing store, and non-zero
	// parameters that differ from the stored ones are an error.
	Params Params
	// SkipLogCheck skips re-hashing every logged transaction at Open (the
	// bbolt structure check still runs). Only for very large logs.
	SkipLogCheck bool
	// beforeCommit is a test hook run just before the bbolt commit (that is,
	// before the fsync); an error simulates a crash at that point.
	beforeCommit func() error
	// noSync skips fsync (property tests that apply thousands of blocks).
	noSync bool
}

// Store is the ledger state and log in one bbolt file. Blocks are applied
// one at a time; queries run concurrently with them.
type Store struct {
	db       *bolt.DB
	path     string
	chainID  string
	origin   string
	key      ed25519.PrivateKey
	verifier *VerifyCache
	disputes *disputeCache
	opts     Options
	params   Params

	blockMu sync.Mutex // held from Begin until Commit or Discard
}

// Open opens or creates the store at path. A damaged file is reported as
// ErrCorrupt, never repaired silently.
func Open(path string, opts Options) (s *Store, err error) {
	if opts.ChainID == "" || opts.Verifier == nil || len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("ledger: Open needs a chain id, a proof verifier and an ed25519 signing key")
	}
	_, statErr := os.Stat(path)
	existed := statErr == nil
	if existed {
		if err := checkBoltFileSize(path); err != nil {
			return nil, fmt.Errorf("%w: %s: %v (restore it from a backup or resync the node; the file was left untouched)", ErrCorrupt, path, err)
		}
	}
	// bbolt can panic on a damaged file instead of returning an error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: opts.noSync})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open ledger database %s: locked by another process", path)
		}
		if existed {
			return nil, fmt.Errorf("%w: %s: %v (restore it from a backup or resync the node; the file was left untouched)", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("open ledger database %s: %w", path, err)
	}
	s = &Store{
		db: db, path: path, chainID: opts.ChainID, origin: Origin(opts.ChainID), key: opts.SigningKey,
		verifier: NewVerifyCache(opts.Verifier, 0), opts: opts,
	}
	if opts.Disputes != nil {
		s.disputes = &disputeCache{v: opts.Disputes}
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.checkIntegrity(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bMeta)
		if c := meta.Get(kChainID); c != nil {
			if string(c) != s.chainID {
				return fmt.Errorf("ledger database %s belongs to chain %q, not %q", s.path, c, s.chainID)
			}
			raw := meta.Get(kParams)
			if raw == nil {
				return fmt.Errorf("ledger database %s was made by an older version of Veil (it has no chain parameters): start a new ledger", s.path)
			}
			stored := &ledgerv1.ChainParams{}
			if err := proto.Unmarshal(raw, stored); err != nil {
				return fmt.Errorf("%w: %s: chain parameters: %v", ErrCorrupt, s.path, err)
			}
			p, err := ParamsFromProto(stored)
			if err != nil {
				return fmt.Errorf("%w: %s: chain parameters: %v", ErrCorrupt, s.path, err)
			}
			if !s.opts.Params.IsZero() && !s.opts.Params.Equal(p) {
				return fmt.Errorf("ledger database %s has chain parameters %+v, not %+v", s.path, p, s.opts.Params)
			}
			s.params = p
			return nil
		}
		if meta.Get(kSize) != nil {
			return fmt.Errorf("%w: %s: meta has a log but no chain id", ErrCorrupt, s.path)
		}
		s.params = s.opts.Params
		if s.params.IsZero() {
			s.params = DefaultParams
		}
		if err := s.params.Validate(); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if err := errors.Join(meta.Put(kChainID, []byte(s.chainID)), putProto(meta, kParams, s.params.Proto())); err != nil {
			return err
		}
		stateHash, err := s.genesisMarket(tx) // market.go: the genesis balances
		if err != nil {
			return err
		}
		empty := hasher.EmptyRoot()
		cp := SignCheckpoint(s.key, s.origin, 0, empty, 0, stateHash)
		return errors.Join(meta.Put(kHeight, u64(0)), meta.Put(kSize, u64(0)), meta.Put(kRange, nil),
			meta.Put(kStateHash, stateHash), putProto(meta, kCheckpoint, cp))
	})
}

// checkIntegrity runs bbolt's page-structure check and re-hashes every
// logged transaction into the Merkle root, comparing it with the stored
// range and the signed checkpoint: a flipped bit anywhere in the log is
// found here rather than served.
func (s *Store) checkIntegrity() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, e)
		}
		st, err := readState(tx)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		cp, err := s.checkpointIn(tx)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		if err := VerifyCheckpoint(cp, nil); err != nil {
			return fmt.Errorf("%w: %s: stored checkpoint: %v", ErrCorrupt, s.path, err)
		}
		root, err := rootOf(st.rng)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, err)
		}
		if cp.Size != st.size || !bytes.Equal(cp.RootHash, root) || !bytes.Equal(cp.StateHash, st.stateHash) || cp.Height != st.height {
			return fmt.Errorf("%w: %s: stored log (size %d) does not match the signed checkpoint (size %d)", ErrCorrupt, s.path, st.size, cp.Size)
		}
		if s.opts.SkipLogCheck {
			return nil
		}
		for _, b := range stateBuckets {
			err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				if !sealOK(b, k, v) {
					return fmt.Errorf("%w: %s: record %x in %s fails its checksum", ErrCorrupt, s.path, k, b)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		r := rangeFactory.NewEmptyRange(0)
		n := uint64(0)
		nodes := tx.Bucket(bNodes)
		var bad error
		visit := func(id compact.NodeID, h []byte) {
			if got := nodes.Get(nodeKey(id)); bad == nil && !bytes.Equal(got, h) {
				bad = fmt.Errorf("%w: %s: Merkle node %d/%d does not match the logged transactions", ErrCorrupt, s.path, id.Level, id.Index)
			}
		}
		c := tx.Bucket(bTxs).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) != n {
				return fmt.Errorf("%w: %s: log entry %d missing", ErrCorrupt, s.path, n)
			}
			if err := r.Append(hasher.HashLeaf(v), visit); err != nil {
				return err
			}
			if bad != nil {
				return bad
			}
			n++
		}
		got, _ := rootOf(r)
		if n != st.size || !bytes.Equal(got, root) {
			return fmt.Errorf("%w: %s: re-hashing the %d logged transactions gives a root that does not match the checkpoint (log size %d)", ErrCorrupt, s.path, n, st.size)
		}
		return nil
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// ChainID returns the chain id.
func (s *Store) ChainID() string { return s.chainID }

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// Verifier returns the store's (caching) proof verifier.
func (s *Store) Verifier() *VerifyCache { return s.verifier }

// Params returns the chain's consensus parameters.
func (s *Store) Params() Params { return s.params }

// PublicKey returns the checkpoint signing key.
func (s *Store) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

type logState struct {
	height    uint64
	size      uint64
	rng       *compact.Range
	stateHash []byte
}

func readState(tx *bolt.Tx) (*logState, error) {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		return nil, errors.New("meta bucket missing")
	}
	h, sz, rb, sh := meta.Get(kHeight), meta.Get(kSize), meta.Get(kRange), meta.Get(kStateHash)
	if len(h) != 8 || len(sz) != 8 || len(sh) != 32 || len(rb)%32 != 0 {
		return nil, errors.New("meta keys missing or damaged")
	}
	size := binary.BigEndian.Uint64(sz)
	hashes := make([][]byte, 0, len(rb)/32)
	for i := 0; i < len(rb); i += 32 {
		hashes = append(hashes, bytes.Clone(rb[i:i+32]))
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("log range: %w", err)
	}
	return &logState{height: binary.BigEndian.Uint64(h), size: size, rng: rng, stateHash: bytes.Clone(sh)}, nil
}

func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func nodeKey(id compact.NodeID) []byte {
	k := make([]byte, 9)
	k[0] = byte(id.Level)
	binary.BigEndian.PutUint64(k[1:], id.Index)
	return k
}

func putProto(b *bolt.Bucket, k []byte, m proto.Message) error {
	v, err := canonical.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(k, v)
}

// getProto reads a sealed state record.
func getProto(tx *bolt.Tx, bucket, k []byte, m proto.Message) (bool, error) {
	v := get(tx, bucket, k)
	if v == nil {
		return false, nil
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return true, fmt.Errorf("%w: record %q in %s: %v", ErrCorrupt, k, bucket, err)
	}
	return true, nil
}

// State records are sealed with a CRC-32C of bucket, key and value: bbolt
// checksums only its meta pages, and a damaged record must be an error,
// not a silently different state. Open checks every seal.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func sealSum(bucket, k, v []byte) uint32 {
	c := crc32.Update(0, crcTable, bucket)
	c = crc32.Update(c, crcTable, []byte{0})
	c = crc32.Update(c, crcTable, k)
	c = crc32.Update(c, crcTable, []byte{0})
	return crc32.Update(c, crcTable, v)
}

func seal(bucket, k, v []byte) []byte {
	out := make([]byte, len(v), len(v)+4)
	copy(out, v)
	return binary.BigEndian.AppendUint32(out, sealSum(bucket, k, v))
}

func unseal(v []byte) []byte { return v[:len(v)-4] }

func sealOK(bucket, k, v []byte) bool {
	return len(v) >= 4 && binary.BigEndian.Uint32(v[len(v)-4:]) == sealSum(bucket, k, v[:len(v)-4])
}

// get reads a sealed state value; a broken seal panics with ErrCorrupt,
// which the query and block paths turn into an error (see guard). Open has
// already checked every seal, so this only fires for damage that happened
// while the node ran.
func get(tx *bolt.Tx, bucket, k []byte) []byte {
	v := tx.Bucket(bucket).Get(k)
	if v == nil {
		return nil
	}
	if !sealOK(bucket, k, v) {
		panic(corruptPanic{fmt.Errorf("%w: record %x in %s fails its checksum", ErrCorrupt, k, bucket)})
	}
	return unseal(v)
}

type corruptPanic struct{ err error }

// stateBuckets are the sealed ones.
var stateBuckets = [][]byte{bSeen, bModels, bVKs, bRequests, bReveals, bByModel, bReceipts, bPending, bSetup,
	bAccounts, bOffers, bEscrows, bDue, bDisputes, bMarket}

func (s *Store) checkpointIn(tx *bolt.Tx) (*ledgerv1.Checkpoint, error) {
	v := tx.Bucket(bMeta).Get(kCheckpoint)
	if v == nil {
		return nil, errors.New("no checkpoint stored")
	}
	cp := &ledgerv1.Checkpoint{}
	if err := proto.Unmarshal(v, cp); err != nil {
		return nil, fmt.Errorf("%w: stored checkpoint: %v", ErrCorrupt, err)
	}
	return cp, nil
}

func digest32(b []byte) []byte { d := sha256.Sum256(b); return d[:] }

// view runs fn in a read transaction, turning a checksum failure found
// while reading into an error.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer recoverCorrupt(&err)
	return s.db.View(fn)
}

func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		cp, ok := r.(corruptPanic)
		if !ok {
			panic(r)
		}
		*err = cp.err
	}
}

// checkBoltFileSize refuses a database file shorter than its own meta page
// says it is. bbolt maps the file and reads the pages the meta names; on a
// truncated file those reads fault (SIGSEGV/SIGBUS), which no recover
// catches, so a truncated file would crash the node instead of being
// reported. The layout read here is bbolt's (internal/common: a 16-byte
// page header, then magic, version, page size, flags, root bucket (16
// bytes), freelist, high-water page id, txid, checksum); of the two meta
// pages the one with the larger txid and the right magic is the one bbolt
// uses.
func checkBoltFileSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	const magic = 0xED0CDAED
	const metaOff = 16 // page header
	read := func(off int64) (pageSize, hwm, txid uint64, ok bool) {
		var b [metaOff + 64]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return 0, 0, 0, false
		}
		m := b[metaOff:]
		le := binary.LittleEndian
		h := fnv.New64a()
		h.Write(m[:56])
		if le.Uint32(m[0:]) != magic || h.Sum64() != le.Uint64(m[56:]) {
			return 0, 0, 0, false // bbolt ignores a meta page whose checksum fails
		}
		return uint64(le.Uint32(m[8:])), le.Uint64(m[40:]), le.Uint64(m[48:]), true
	}
	ps0, hwm0, tx0, ok0 := read(0)
	if !ok0 {
		return nil // not a bbolt file, or a damaged first meta: bbolt decides
	}
	ps, hwm := ps0, hwm0
	if ps1, hwm1, tx1, ok1 := read(int64(ps0)); ok1 && ps1 == ps0 && tx1 > tx0 {
		hwm = hwm1
	}
	if ps == 0 || hwm > uint64(fi.Size())/ps {
		return fmt.Errorf("the file is %d bytes, but its meta page names %d pages of %d bytes (truncated?)", fi.Size(), hwm, ps)
	}
	return nil
}
