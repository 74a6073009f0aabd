package ledgertest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// FakeVerifier accepts a proof iff it equals FakeProof(vk, statement). It is
// deterministic and instant, so state-machine and consensus tests do not
// need a Groth16 setup; it rejects every tampered proof or statement.
type FakeVerifier struct{}

// ChallengeDigest implements ledger.ProofVerifier.
func (FakeVerifier) ChallengeDigest(images [][]byte) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte("fake-challenge-digest"))
	for _, im := range images {
		h.Write(im)
	}
	return h.Sum(nil), nil
}

// FakeSpec is a model spec FakeVerifier understands: it names the number
// of classes, the output fraction and the tolerance.
func FakeSpec(classes int) []byte {
	return []byte(fmt.Sprintf("fake-spec classes=%d frac=8 tolerance=128", classes))
}

// FakeVK is the only verifying key FakeVerifier accepts for (spec, batch):
// it stands for "the key of the circuit this spec determines".
func FakeVK(spec []byte, batch int) []byte {
	h := sha256.Sum256(append([]byte(fmt.Sprintf("fake vk batch=%d ", batch)), spec...))
	return h[:]
}

// CheckModel implements ledger.ProofVerifier.
func (FakeVerifier) CheckModel(spec, vk []byte, batch int) (ledger.ModelSpec, error) {
	var ms ledger.ModelSpec
	var frac int
	if _, err := fmt.Sscanf(string(spec), "fake-spec classes=%d frac=%d tolerance=%d", &ms.Classes, &frac, &ms.Tolerance); err != nil || ms.Classes <= 0 {
		return ms, fmt.Errorf("spec %q does not parse", spec)
	}
	if string(vk) != string(FakeVK(spec, batch)) {
		return ms, errors.New("the verifying key is not the key of the spec's circuit")
	}
	ms.ID = sha256.Sum256(spec)
	ms.OutputFrac = frac
	return ms, nil
}

// VerifyChallengeProof implements ledger.ProofVerifier.
func (FakeVerifier) VerifyChallengeProof(vk []byte, st ledger.Statement, proof []byte) error {
	want := FakeProof(vk, st)
	if string(proof) != string(want) {
		return errors.New("fake proof does not match the statement")
	}
	return nil
}

// FakeProof is the only proof FakeVerifier accepts for (vk, st).
func FakeProof(vk []byte, st ledger.Statement) []byte {
	h := ledger.StatementHash(vk, st)
	return h[:]
}

// Key derives a deterministic ed25519 key from a label.
func Key(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("ledgertest key " + label))
	return ed25519.NewKeyFromSeed(seed[:])
}

// Outputs is the fake "model": deterministic scores for an image.
func Outputs(image []byte, n int) []int64 {
	out := make([]int64, n)
	for i, b := range image {
		out[i%n] += int64(b) * int64(i%7-3)
	}
	return out
}

// Request is what a client remembers about one request.
type Request struct {
	ID         string
	ModelID    string
	Challenges [][]byte
	Positions  []uint32
	Salt       []byte
	// Price is what the client signs to pay (the model's offer price on a
	// chain with offers; 0 for a model without one).
	Price uint64
}

// Fixture signs transactions for one chain.
type Fixture struct {
	ChainID    string
	Owner      ed25519.PrivateKey
	Server     ed25519.PrivateKey
	Client     ed25519.PrivateKey
	Spec       []byte
	VK         []byte
	Commitment []byte
	Outputs    int // scores per challenge
	Batch      int // challenges per proof
	Verifier   ledger.ProofVerifier

	mu       *sync.Mutex         // guards requests (shared, as the map, by copies): tests make requests from many goroutines
	requests map[string]*Request // by id, to find a request's model
}

// NewFixture makes a fixture whose keys derive from label. Its model
// proves up to 8 challenges per proof.
func NewFixture(chainID, label string) *Fixture {
	c := sha256.Sum256([]byte("commitment " + label))
	f := &Fixture{
		ChainID: chainID, Owner: Key(label + "/owner"), Server: Key(label + "/server"), Client: Key(label + "/client"),
		Spec: FakeSpec(10), Commitment: c[:], Outputs: 10, Batch: 8, Verifier: FakeVerifier{}, requests: map[string]*Request{}, mu: new(sync.Mutex),
	}
	f.VK = FakeVK(f.Spec, f.Batch)
	return f
}

// Sign signs a body with key, panicking on error (test helper).
func (f *Fixture) Sign(key ed25519.PrivateKey, body *ledgerv1.TxBody) []byte {
	body.ChainId = f.ChainID
	raw, err := ledger.SignTx(key, body)
	if err != nil {
		panic(err)
	}
	return raw
}

func (f *Fixture) signer(key ed25519.PrivateKey) ledger.Signer {
	return ledger.Signer{ChainID: f.ChainID, Key: key}
}

func must(raw []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return raw
}

// RegisterBody is the registration Register signs (before the server's
// co-signature).
func (f *Fixture) RegisterBody(modelID string) *ledgerv1.RegisterModel {
	return &ledgerv1.RegisterModel{
		ModelId: modelID, Architecture: "mlp 784-32-10 test", Commitment: f.Commitment, VerifyingKey: f.VK,
		OutputsPerChallenge: uint32(f.Outputs), Spec: f.Spec, ProofBatch: uint32(f.Batch),
	}
}

// Register returns a RegisterModel signed by the owner and co-signed by
// the server key.
func (f *Fixture) Register(modelID string) []byte {
	return must(f.signer(f.Owner).RegisterModel(f.RegisterBody(modelID), f.Server))
}

// NewRequest makes a request with k blocks and k-1 deterministic
// challenges derived from the request id.
func (f *Fixture) NewRequest(modelID, requestID string, k int) *Request {
	r := &Request{ID: requestID, ModelID: modelID, Salt: []byte("salt " + requestID)}
	for i := 0; i < k-1; i++ {
		im := make([]byte, ledger.ChallengeImageBytes)
		seed := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", requestID, i)))
		for j := range im {
			im[j] = seed[j%32] ^ byte(j)
		}
		r.Challenges = append(r.Challenges, im)
		r.Positions = append(r.Positions, uint32(i+1)) // block 0 is the real image
	}
	f.mu.Lock()
	f.requests[requestID] = r
	f.mu.Unlock()
	return r
}

// Key returns the ledger key of a request made by NewRequest (by id), as
// the fixture's client made it.
func (f *Fixture) Key(requestID string) []byte {
	f.mu.Lock()
	r, ok := f.requests[requestID]
	f.mu.Unlock()
	if !ok {
		panic("ledgertest: unknown request " + requestID)
	}
	return f.KeyOf(r.ModelID, r.ID)
}

// KeyOf returns the ledger key of the fixture client's request id for a
// model.
func (f *Fixture) KeyOf(modelID, requestID string) []byte {
	k := ledger.RequestKey(modelID, f.Client.Public().(ed25519.PublicKey), requestID)
	return k[:]
}

// ReceiptBody is the receipt Receipt signs.
func (f *Fixture) ReceiptBody(r *Request) *ledgerv1.InferenceReceipt {
	c := ledger.ChallengeCommitment(r.Challenges, r.Positions, r.Salt)
	in := sha256.Sum256([]byte("input ciphertext " + r.ID))
	out := sha256.Sum256([]byte("output ciphertext " + r.ID))
	keys := sha256.Sum256([]byte("evaluation keys"))
	k := uint32(len(r.Challenges) + 1)
	d := ledger.ClientRequestDigest(f.ChainID, r.ModelID, r.ID, keys[:], in[:], c[:], k, r.Price)
	return &ledgerv1.InferenceReceipt{
		ModelId: r.ModelID, RequestId: r.ID, KeysDigest: keys[:], InputDigest: in[:], OutputDigest: out[:],
		ChallengeCommitment: c[:], NumBlocks: k, ClientKey: f.Client.Public().(ed25519.PublicKey),
		ClientSignature: ed25519.Sign(f.Client, d[:]), Price: r.Price,
	}
}

// Receipt returns the server-signed receipt for r, with the client's
// signature on the request.
func (f *Fixture) Receipt(r *Request) []byte {
	return must(f.signer(f.Server).Receipt(f.ReceiptBody(r)))
}

// Reveal returns the client-signed reveal for r.
func (f *Fixture) Reveal(r *Request) []byte {
	return must(f.signer(f.Client).Reveal(&ledgerv1.ChallengeReveal{
		ModelId: r.ModelID, RequestId: r.ID, Challenges: r.Challenges, Positions: r.Positions, Salt: r.Salt,
	}))
}

// ProofBody builds the ChallengeProof for rs with the fake proof, its
// batch padded as the ledger pads it; tamper changes one output after the
// proof is made.
func (f *Fixture) ProofBody(rs []*Request, tamper bool) *ledgerv1.ChallengeProof {
	var images [][]byte
	var keys [][]byte
	for _, r := range rs {
		k := ledger.RequestKey(r.ModelID, f.Client.Public().(ed25519.PublicKey), r.ID)
		keys = append(keys, k[:])
		images = append(images, r.Challenges...)
	}
	images = ledger.PadChallenges(images, f.Batch)
	var rows [][]int64
	var flat []int64
	for _, im := range images {
		o := Outputs(im, f.Outputs)
		rows = append(rows, o)
		flat = append(flat, o...)
	}
	d, _ := f.Verifier.ChallengeDigest(images)
	proof := FakeProof(f.VK, ledger.Statement{Commitment: f.Commitment, ChallengeDigest: d, Outputs: rows})
	if tamper {
		flat[0]++
	}
	return &ledgerv1.ChallengeProof{ModelId: rs[0].ModelID, RequestKeys: keys, Outputs: flat, Proof: proof}
}

// Proof returns the server-signed proof transaction for rs.
func (f *Fixture) Proof(rs []*Request, tamper bool) []byte {
	return must(f.signer(f.Server).Proof(f.ProofBody(rs, tamper)))
}

// Verdict returns the client-signed verdict on a request made by
// NewRequest: MATCH when accepting, OUTPUTS_DIFFER when rejecting.
func (f *Fixture) Verdict(requestID string, accept bool) []byte {
	reason := ledgerv1.VerdictReason_VERDICT_REASON_OUTPUTS_DIFFER
	if accept {
		reason = ledgerv1.VerdictReason_VERDICT_REASON_MATCH
	}
	return f.VerdictWith(requestID, reason)
}

// VerdictWith returns the client-signed verdict with a given reason
// (accepting iff the reason is MATCH).
func (f *Fixture) VerdictWith(requestID string, reason ledgerv1.VerdictReason) []byte {
	f.mu.Lock()
	r, ok := f.requests[requestID]
	f.mu.Unlock()
	if !ok {
		r = &Request{ID: requestID, ModelID: "unknown"}
	}
	accept := reason == ledgerv1.VerdictReason_VERDICT_REASON_MATCH
	return must(f.signer(f.Client).Verdict(&ledgerv1.Verdict{ModelId: r.ModelID, RequestId: requestID, Accept: accept, Reason: reason}))
}

// CostlyVerifier is FakeVerifier plus a fixed amount of CPU work per proof
// verification (Work rounds of SHA-256), to stand in for Groth16's cost in
// throughput benchmarks. The work is deterministic: no clocks.
type CostlyVerifier struct {
	FakeVerifier
	Work int
}

// VerifyChallengeProof burns the work, then checks like FakeVerifier.
func (c CostlyVerifier) VerifyChallengeProof(vk []byte, st ledger.Statement, proof []byte) error {
	h := sha256.Sum256(proof)
	for i := 0; i < c.Work; i++ {
		h = sha256.Sum256(h[:])
	}
	if h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 0 && h[4] == 0 && h[5] == 0 {
		return errors.New("unlucky") // never in practice; keeps the loop from being optimised away
	}
	return c.FakeVerifier.VerifyChallengeProof(vk, st, proof)
}
