package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	gmpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/zk"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// The contributor's and the prover's side of the ledger ceremony
// (ledger/ceremony.go, docs/zk.md). A contributor fetches the ceremony's
// last accumulator from the ledger (chunks are content-addressed, so the
// node cannot substitute them), contributes, uploads the new accumulator
// in chunks and submits the contribution; the node verifies it before it
// is accepted. The prover rebuilds its proving key from the sealed
// transcript and checks that its verifying key is the one the ledger
// derived.

// FetchBlob reassembles an accumulator from its chunks, checking each
// chunk's hash.
func FetchBlob(ctx context.Context, api ledger.CeremonyAPI, chunks [][]byte) ([]byte, error) {
	var b bytes.Buffer
	for i, h := range chunks {
		c, err := api.Chunk(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("chunk %d of %d: %w", i+1, len(chunks), err)
		}
		if got := sha256.Sum256(c); !bytes.Equal(got[:], h) {
			return nil, fmt.Errorf("chunk %d of %d: the ledger sent bytes that hash to %x, not %x", i+1, len(chunks), got[:8], h[:min(8, len(h))])
		}
		b.Write(c)
	}
	return b.Bytes(), nil
}

// UploadBlob stores blob on the ledger as chunks of at most
// ledger.MaxChunkBytes (a chunk already stored is skipped) and returns
// their hashes, in order. Up to uploadParallel chunks are in flight, so
// they share blocks instead of waiting for one block each.
func UploadBlob(ctx context.Context, api ledger.API, s ledger.Signer, blob []byte) ([][]byte, error) {
	var hashes [][]byte
	var txs [][]byte
	for off := 0; off < len(blob); off += ledger.MaxChunkBytes {
		c := blob[off:min(off+ledger.MaxChunkBytes, len(blob))]
		h := sha256.Sum256(c)
		hashes = append(hashes, h[:])
		tx, err := s.CeremonyChunk(c)
		if err != nil {
			return nil, err
		}
		txs = append(txs, tx)
	}
	errs := make([]error, len(txs))
	sem := make(chan struct{}, uploadParallel)
	var wg sync.WaitGroup
	for i, tx := range txs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := submitOnce(ctx, api, tx); err != nil {
				var rj *ledger.Rejection
				if errors.As(err, &rj) && (rj.Code == ledgerv1.Code_CODE_CHUNK_EXISTS || rj.Code == ledgerv1.Code_CODE_REPLAYED_SIGNATURE) {
					return // stored already (by us, or by somebody else: the same body)
				}
				errs[i] = fmt.Errorf("upload chunk %d of %d: %w", i+1, len(txs), err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return hashes, nil
}

const uploadParallel = 8

// Contribution is one accepted contribution.
type Contribution struct {
	Ceremony string
	Hash     [32]byte // the accumulator's hash, as the ledger records it
	Index    uint64   // log index of the contribution transaction
	Bytes    int      // size of the accumulator
}

// ContributePhase1 adds a contribution to the chain's phase 1: it fetches
// the last accumulator (or starts from the initial one), contributes with
// fresh randomness (zeroed once used) and submits.
func ContributePhase1(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, attestation string) (*Contribution, error) {
	c, _, err := contributePhase1(ctx, api, s, attestation, nil)
	return c, err
}

// fetchPhase1 is the last phase-1 accumulator on the ledger (the initial
// one before any contribution).
func fetchPhase1(ctx context.Context, api ledger.CeremonyAPI, rec *ledgerv1.CeremonyRecord) (*mpcsetup.Phase1, error) {
	n := len(rec.Contributions)
	if n == 0 {
		return mpcsetup.NewPhase1(rec.Domain)
	}
	b, err := FetchBlob(ctx, api, rec.Contributions[n-1].Chunks)
	if err != nil {
		return nil, err
	}
	return mpcsetup.DecodePhase1(b, rec.Domain)
}

// contributePhase1 contributes on known when it is the ledger's last
// accumulator (checked by its hash: RunCeremony's parties share a process
// and need not decode what the previous one made), else on the fetched one.
func contributePhase1(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, attestation string, known *mpcsetup.Phase1) (*Contribution, *mpcsetup.Phase1, error) {
	rec, err := api.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		return nil, nil, fmt.Errorf("phase 1: %w", err)
	}
	next, err := nextPhase1(ctx, api, rec, s.Key.Public().(ed25519.PublicKey), known)
	if err != nil {
		return nil, nil, err
	}
	c, err := submitContribution(ctx, api, s, ledger.Phase1ID, rec.LastHash, next.Bytes(), attestation)
	return c, next, err
}

// nextPhase1 is a contribution by contributor on rec's last accumulator:
// known when it is that one (by its hash), else the one fetched from the
// ledger, whose hash must be the one the record names.
func nextPhase1(ctx context.Context, api ledger.CeremonyAPI, rec *ledgerv1.CeremonyRecord, contributor ed25519.PublicKey, known *mpcsetup.Phase1) (*mpcsetup.Phase1, error) {
	prev := known
	var err error
	if prev == nil || !bytes.Equal(hashOf(prev), rec.LastHash) {
		prev, err = fetchPhase1(ctx, api, rec)
	}
	if err != nil {
		return nil, fmt.Errorf("phase 1: last accumulator: %w", err)
	}
	if h := prev.Hash(); !bytes.Equal(h[:], rec.LastHash) {
		return nil, fmt.Errorf("phase 1: the last accumulator hashes to %x, the ledger records %x", h[:8], prefix(rec.LastHash))
	}
	next, err := prev.ContributeAs(ctx, contributor)
	if err != nil {
		return nil, fmt.Errorf("phase 1: contribute: %w", err)
	}
	return next, nil
}

func submitContribution(ctx context.Context, api ledger.API, s ledger.Signer, id string, prev, blob []byte, attestation string) (*Contribution, error) {
	chunks, err := UploadBlob(ctx, api, s, blob)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	tx, err := s.CeremonyContribution(&ledgerv1.CeremonyContribution{CeremonyId: id, PreviousHash: prev, Chunks: chunks, Attestation: attestation})
	if err != nil {
		return nil, err
	}
	index, err := submitOnce(ctx, api, tx)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: contribution: %w", id, err)
	}
	return &Contribution{Ceremony: id, Hash: sha256.Sum256(blob), Index: index, Bytes: len(blob)}, nil
}

// lastPhase2 is a phase 2's last accumulator: the start's when nobody has
// contributed (gnark's encoding of the accumulator is a prefix of the
// start's, which then lists [K]₁ of the public wires).
func lastPhase2(ctx context.Context, api ledger.CeremonyAPI, rec *ledgerv1.CeremonyRecord) (*gmpc.Phase2, error) {
	chunks := rec.GetStart().GetChunks()
	if n := len(rec.Contributions); n > 0 {
		chunks = rec.Contributions[n-1].Chunks
	}
	b, err := FetchBlob(ctx, api, chunks)
	if err != nil {
		return nil, err
	}
	p, err := mpcsetup.DecodePhase2Prefix(b) // the node's bytes: lengths bounded by the blob's size
	if err != nil {
		return nil, fmt.Errorf("phase-2 accumulator: %w", err)
	}
	if h := mpcsetup.Phase2Hash(p); !bytes.Equal(h[:], rec.LastHash) {
		return nil, fmt.Errorf("the last phase-2 accumulator hashes to %x, the ledger records %x", h[:8], rec.LastHash[:min(8, len(rec.LastHash))])
	}
	return p, nil
}

// ContributePhase2 adds a contribution to phase-2 ceremony id.
func ContributePhase2(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id, attestation string) (*Contribution, error) {
	rec, err := api.Ceremony(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	if rec.Phase != 2 {
		return nil, fmt.Errorf("ceremony %s is not a phase 2", id)
	}
	prev, err := lastPhase2(ctx, api, rec)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	next := mpcsetup.ContributePhase2As(prev, s.Key.Public().(ed25519.PublicKey))
	return submitContribution(ctx, api, s, id, rec.LastHash, mpcsetup.Phase2Bytes(next), attestation)
}

// sealedPhase1 fetches the sealed phase 1.
func sealedPhase1(ctx context.Context, api ledger.CeremonyAPI) (*mpcsetup.Transcript1, error) {
	return sealedPhase1Known(ctx, api, nil)
}

// sealedPhase1Known is sealedPhase1 that uses known, without fetching and
// decoding it (seconds at 2^17), when it is the ledger's last accumulator
// (by its hash): RunCeremony's parties share a process.
func sealedPhase1Known(ctx context.Context, api ledger.CeremonyAPI, known *mpcsetup.Phase1) (*mpcsetup.Transcript1, error) {
	rec, err := api.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		return nil, fmt.Errorf("phase 1: %w", err)
	}
	if !rec.Sealed || len(rec.Contributions) == 0 {
		return nil, errors.New("phase 1 is not sealed")
	}
	if known != nil && bytes.Equal(hashOf(known), rec.LastHash) {
		return &mpcsetup.Transcript1{Last: known, Beacon: rec.Beacon}, nil
	}
	b, err := FetchBlob(ctx, api, rec.Contributions[len(rec.Contributions)-1].Chunks)
	if err != nil {
		return nil, fmt.Errorf("phase 1: %w", err)
	}
	last, err := mpcsetup.DecodePhase1(b, rec.Domain)
	if err != nil {
		return nil, fmt.Errorf("phase 1: %w", err)
	}
	return &mpcsetup.Transcript1{Last: last, Beacon: rec.Beacon}, nil
}

// OpenPhase2 opens phase-2 ceremony id for spec's circuit at batch: it
// seals phase 1 for the circuit's domain, computes the start (the Lagrange
// basis: the slow step) and submits it; every node checks it against the
// circuit it compiles from the spec.
func OpenPhase2(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id string, spec *circuits.Spec, batch int) (*Opened, error) {
	return openPhase2(ctx, api, s, id, spec, batch, nil)
}

func openPhase2(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id string, spec *circuits.Spec, batch int, known *mpcsetup.Phase1) (*Opened, error) {
	p1, err := sealedPhase1Known(ctx, api, known)
	if err != nil {
		return nil, err
	}
	r, err := zk.Compile(spec, batch)
	if err != nil {
		return nil, err
	}
	srs, err := mpcsetup.SealPhase1To(ctx, p1.Last, p1.Beacon, int(zk.Domain(r)))
	if err != nil {
		return nil, err
	}
	start, evals, err := mpcsetup.Phase2StartFromSRS(ctx, r, srs)
	if err != nil {
		return nil, err
	}
	chunks, err := UploadBlob(ctx, api, s, start.Bytes())
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	tx, err := s.Phase2Open(&ledgerv1.Phase2Open{CeremonyId: id, Spec: spec.Canonical(), Batch: uint32(batch), Chunks: chunks})
	if err != nil {
		return nil, err
	}
	if _, err := submitOnce(ctx, api, tx); err != nil {
		return nil, fmt.Errorf("ceremony %s: open: %w", id, err)
	}
	return &Opened{spec: spec, batch: batch, r: r, srs: srs, evals: evals}, nil
}

// Opened is what the opener of a phase 2 computed (the sealed SRS and the
// evaluations the proving key needs: the slow part); Key turns the sealed
// ceremony into the proving key without recomputing them.
type Opened struct {
	spec  *circuits.Spec
	batch int
	r     *cs.R1CS
	srs   *gmpc.SrsCommons
	evals *gmpc.Phase2Evaluations
}

// Key seals the proving key from the last accumulator and the beacon of
// the sealed ceremony rec and checks that its verifying key is the one the
// ledger derived.
func (o *Opened) Key(ctx context.Context, api ledger.CeremonyAPI, rec *ledgerv1.CeremonyRecord) (*zk.ProvingKey, error) {
	last, err := lastPhase2(ctx, api, rec)
	if err != nil {
		return nil, err
	}
	gpk, gvk := mpcsetup.SealPhase2(o.srs, o.evals, last, rec.Beacon)
	pk, err := zk.NewProvingKey(o.spec, o.batch, o.r, gpk, gvk)
	if err != nil {
		return nil, err
	}
	if h := pk.VK.Hash(); !bytes.Equal(h[:], rec.VerifyingKeyHash) {
		return nil, fmt.Errorf("ceremony %s: the transcript gives verifying key %x, the ledger derived %x", rec.CeremonyId, h[:8], rec.VerifyingKeyHash[:min(8, len(rec.VerifyingKeyHash))])
	}
	return pk, nil
}

// CloseAndSeal closes ceremony id and seals it once its beacon block is
// committed (polling the ledger's height every poll).
func CloseAndSeal(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id string, poll time.Duration) (*ledgerv1.CeremonyRecord, error) {
	tx, err := s.CeremonyClose(id)
	if err != nil {
		return nil, err
	}
	if _, err := submitOnce(ctx, api, tx); err != nil {
		return nil, fmt.Errorf("ceremony %s: close: %w", id, err)
	}
	return SealWhenReady(ctx, api, s, id, poll)
}

// SealWhenReady seals closed ceremony id once its beacon block is
// committed (polling the ledger's height every poll) and returns the sealed
// record. A ceremony somebody else sealed meanwhile is returned as it is.
func SealWhenReady(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id string, poll time.Duration) (*ledgerv1.CeremonyRecord, error) {
	rec, err := api.Ceremony(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Sealed {
		return rec, nil
	}
	if rec.CloseHeight == 0 {
		return nil, fmt.Errorf("ceremony %s: seal: it is not closed", id)
	}
	for {
		cp, err := api.Checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		if cp.Height >= rec.BeaconHeight {
			break // the seal goes in a later block than the beacon
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
	tx, err := s.CeremonySeal(id)
	if err != nil {
		return nil, err
	}
	for {
		_, err := submitOnce(ctx, api, tx)
		var rj *ledger.Rejection
		if err == nil || errors.As(err, &rj) && (rj.Code == ledgerv1.Code_CODE_CEREMONY_ALREADY_SEALED || rj.Code == ledgerv1.Code_CODE_REPLAYED_SIGNATURE) {
			break // sealed, by us or by another (a seal's body names only the ceremony: another's is the same body)
		}
		if !errors.As(err, &rj) || rj.Code != ledgerv1.Code_CODE_CEREMONY_BEACON_PENDING {
			return nil, fmt.Errorf("ceremony %s: seal: %w", id, err)
		}
		if err := sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
	return api.Ceremony(ctx, id)
}

// ProvingKeyFromLedger rebuilds the proving key of sealed phase-2
// ceremony id from its transcript on the ledger and checks that its
// verifying key is the one the nodes derived.
func ProvingKeyFromLedger(ctx context.Context, api ledger.CeremonyAPI, id string) (*zk.ProvingKey, error) {
	_, rec, err := readSealedPhase2(ctx, api, id)
	if err != nil {
		return nil, err
	}
	spec, err := circuits.ParseSpec(rec.Spec)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: spec: %w", id, err)
	}
	p1, err := sealedPhase1(ctx, api)
	if err != nil {
		return nil, err
	}
	start, err := FetchBlob(ctx, api, rec.Start.Chunks)
	if err != nil {
		return nil, err
	}
	last, err := lastPhase2(ctx, api, rec)
	if err != nil {
		return nil, err
	}
	pk, err := mpcsetup.ProvingKeyFromTranscript(ctx, spec, int(rec.Batch), p1, start, last, rec.Beacon)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	if h := pk.VK.Hash(); !bytes.Equal(h[:], rec.VerifyingKeyHash) {
		return nil, fmt.Errorf("ceremony %s: the transcript gives verifying key %x, the ledger derived %x", id, h[:8], rec.VerifyingKeyHash[:min(8, len(rec.VerifyingKeyHash))])
	}
	return pk, nil
}

// CeremonyConfig drives a whole ceremony (RunCeremony).
type CeremonyConfig struct {
	// Contributors contribute in order to phase 1 (unless it is sealed
	// already) and then to phase 2.
	Contributors []ledger.Signer
	Names        []string // display names, one per contributor (optional)
	// Opener opens, closes and seals the phase 2 (the model owner).
	Opener ledger.Signer
	ID     string // the phase-2 ceremony id
	Spec   *circuits.Spec
	Batch  int
	Poll   time.Duration // how often to look at the ledger's height (default 100 ms)
	// Progress receives one line per step (optional).
	Progress func(format string, a ...any)
}

// CeremonyResult is what RunCeremony did.
type CeremonyResult struct {
	Phase1, Phase2 []*Contribution
	Record         *ledgerv1.CeremonyRecord // the sealed phase 2
	Key            *zk.ProvingKey           // rebuilt from the transcript; its VK is the ledger's
}

// RunCeremony runs phase 1 (if the chain's is not sealed yet) and the phase
// 2 of cfg.Spec at cfg.Batch with every contributor, each contribution
// submitted and verified by the ledger's nodes before the next, then
// rebuilds the proving key from the sealed transcript.
func RunCeremony(ctx context.Context, api ledger.CeremonyAPI, cfg CeremonyConfig) (*CeremonyResult, error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	poll := cfg.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	name := func(i int) string {
		if i < len(cfg.Names) {
			return cfg.Names[i]
		}
		return fmt.Sprintf("contributor %d", i+1)
	}
	if len(cfg.Contributors) == 0 {
		return nil, errors.New("ceremony: no contributors")
	}
	res := &CeremonyResult{}
	p1, err := api.Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		return nil, fmt.Errorf("phase 1: %w", err)
	}
	var known *mpcsetup.Phase1 // the last phase-1 accumulator, when made here
	if !p1.Sealed {
		for i, s := range cfg.Contributors {
			t0 := time.Now()
			var c *Contribution
			var err error
			c, known, err = contributePhase1(ctx, api, s, name(i), known)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name(i), err)
			}
			res.Phase1 = append(res.Phase1, c)
			progress("phase 1 (2^%d): %s contributed %x (%d KiB), verified by the node and logged at %d (%v)", log2(p1.Domain), name(i), c.Hash[:8], c.Bytes>>10, c.Index, time.Since(t0).Round(time.Millisecond))
		}
		rec, err := CloseAndSeal(ctx, api, cfg.Opener, ledger.Phase1ID, poll)
		if err != nil {
			return nil, err
		}
		progress("phase 1 sealed with the beacon of block %d: %x", rec.BeaconHeight, rec.Beacon[:8])
	}
	t0 := time.Now()
	opened, err := openPhase2(ctx, api, cfg.Opener, cfg.ID, cfg.Spec, cfg.Batch, known)
	if err != nil {
		return nil, err
	}
	progress("phase 2 %q opened for circuit %x (batch %d): the node compiled the spec and checked the start (%v)", cfg.ID, specID8(cfg.Spec), cfg.Batch, time.Since(t0).Round(time.Millisecond))
	for i, s := range cfg.Contributors {
		t0 := time.Now()
		c, err := ContributePhase2(ctx, api, s, cfg.ID, name(i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name(i), err)
		}
		res.Phase2 = append(res.Phase2, c)
		progress("phase 2: %s contributed %x (%d KiB), verified by the node and logged at %d (%v)", name(i), c.Hash[:8], c.Bytes>>10, c.Index, time.Since(t0).Round(time.Millisecond))
	}
	rec, err := CloseAndSeal(ctx, api, cfg.Opener, cfg.ID, poll)
	if err != nil {
		return nil, err
	}
	res.Record = rec
	progress("phase 2 sealed with the beacon of block %d; the node derived verifying key %x", rec.BeaconHeight, rec.VerifyingKeyHash[:8])
	if res.Key, err = opened.Key(ctx, api, rec); err != nil {
		return nil, err
	}
	return res, nil
}

func log2(n uint64) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}

// InTranscript reports where a contribution hash is in ceremony id's
// record: its position (1-based) and the record. It is the node's word, for
// progress reports; VerifyInTranscript checks the same from the log.
func InTranscript(ctx context.Context, api ledger.CeremonyAPI, id string, hash []byte) (pos int, rec *ledgerv1.CeremonyRecord, err error) {
	rec, err = api.Ceremony(ctx, id)
	if err != nil {
		return 0, nil, fmt.Errorf("ceremony %s: %w", id, err)
	}
	for i, c := range rec.Contributions {
		if bytes.Equal(c.Hash, hash) {
			return i + 1, rec, nil
		}
	}
	return 0, rec, fmt.Errorf("ceremony %s: no contribution %x among its %d", id, hash[:min(8, len(hash))], len(rec.Contributions))
}

func specID8(s *circuits.Spec) []byte { id := s.ID(); return id[:8] }

// ContributeToLedger is `veil setup contribute --ledger`: it reads the
// chain id from the node, then contributes to ceremony id (ledger.Phase1ID
// or "" for phase 1, else a phase 2) as key.
func ContributeToLedger(ctx context.Context, api ledger.CeremonyAPI, key ed25519.PrivateKey, id, attestation string) (*Contribution, error) {
	info, err := api.ChainInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger chain info: %w", err)
	}
	s := ledger.Signer{ChainID: info.GetChainId(), Key: key}
	if id == "" || id == ledger.Phase1ID {
		return ContributePhase1(ctx, api, s, attestation)
	}
	return ContributePhase2(ctx, api, s, id, attestation)
}

func hashOf(p *mpcsetup.Phase1) []byte { h := p.Hash(); return h[:] }

// CeremonyKeys returns the proving key of sealed ledger ceremony id: from
// the key store under dataDir when a cached key's verifying key is the one
// the ledger derived, else rebuilt from the transcript
// (ProvingKeyFromLedger) and cached. The cache label names the ledger's
// key, so a key of another chain or ceremony is never used.
func CeremonyKeys(ctx context.Context, api ledger.API, id, dataDir string, say func(string, ...any)) (*zk.ProvingKey, error) {
	capi, rec, err := readSealedPhase2(ctx, api, id)
	if err != nil {
		return nil, err
	}
	spec, err := circuits.ParseSpec(rec.Spec)
	if err != nil {
		return nil, fmt.Errorf("ceremony %s: spec: %w", id, err)
	}
	label := fmt.Sprintf("ledger-%x", rec.VerifyingKeyHash[:min(8, len(rec.VerifyingKeyHash))])
	store := zk.KeyStore{DataDir: dataDir}
	if dataDir != "" {
		if pk, err := store.Load(spec, int(rec.Batch), label); err == nil {
			if h := pk.VK.Hash(); bytes.Equal(h[:], rec.VerifyingKeyHash) {
				return pk, nil
			}
		}
	}
	say("rebuilding the proving key of ceremony %s from its transcript on the ledger (minutes at 2^17: the Lagrange basis)\n", id)
	pk, err := ProvingKeyFromLedger(ctx, capi, id)
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		if _, err := store.Save(pk, label); err != nil {
			return nil, fmt.Errorf("cache the ceremony's keys: %w", err)
		}
	}
	return pk, nil
}
