package ledgertest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

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
}

// Fixture signs transactions for one chain.
type Fixture struct {
	ChainID    string
	Owner      ed25519.PrivateKey
	Server     ed25519.PrivateKey
	Client     ed25519.PrivateKey
	VK         []byte
	Commitment []byte
	Outputs    int // scores per challenge
	Verifier   ledger.ProofVerifier
}

// NewFixture makes a fixture whose keys derive from label.
func NewFixture(chainID, label string) *Fixture {
	c := sha256.Sum256([]byte("commitment " + label))
	return &Fixture{
		ChainID: chainID, Owner: Key(label + "/owner"), Server: Key(label + "/server"), Client: Key(label + "/client"),
		VK: []byte("fake verifying key " + label), Commitment: c[:], Outputs: 10, Verifier: FakeVerifier{},
	}
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

// Register returns a RegisterModel signed by the owner.
func (f *Fixture) Register(modelID string) []byte {
	return f.Sign(f.Owner, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_RegisterModel{RegisterModel: &ledgerv1.RegisterModel{
		ModelId: modelID, Architecture: "mlp 784-32-10 test", Commitment: f.Commitment, VerifyingKey: f.VK,
		ServerKey: f.Server.Public().(ed25519.PublicKey), OutputsPerChallenge: uint32(f.Outputs),
	}}})
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
	return r
}

// Receipt returns the server-signed receipt for r, with the client's
// signature on the request.
func (f *Fixture) Receipt(r *Request) []byte {
	c := ledger.ChallengeCommitment(r.Challenges, r.Positions, r.Salt)
	in := sha256.Sum256([]byte("input ciphertext " + r.ID))
	out := sha256.Sum256([]byte("output ciphertext " + r.ID))
	k := uint32(len(r.Challenges) + 1)
	d := ledger.ClientRequestDigest(r.ModelID, "session-1", r.ID, in[:], c[:], k)
	return f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_InferenceReceipt{InferenceReceipt: &ledgerv1.InferenceReceipt{
		ModelId: r.ModelID, SessionId: "session-1", RequestId: r.ID, InputDigest: in[:], OutputDigest: out[:],
		ChallengeCommitment: c[:], NumBlocks: k, ClientKey: f.Client.Public().(ed25519.PublicKey),
		ClientSignature: ed25519.Sign(f.Client, d[:]),
	}}})
}

// Reveal returns the client-signed reveal for r.
func (f *Fixture) Reveal(r *Request) []byte {
	return f.Sign(f.Client, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeReveal{ChallengeReveal: &ledgerv1.ChallengeReveal{
		RequestId: r.ID, Challenges: r.Challenges, Positions: r.Positions, Salt: r.Salt,
	}}})
}

// ProofBody builds the ChallengeProof for rs with the fake proof; tamper
// changes one output after the proof is made.
func (f *Fixture) ProofBody(rs []*Request, tamper bool) *ledgerv1.ChallengeProof {
	var images [][]byte
	var rows [][]int64
	var flat []int64
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
		for _, im := range r.Challenges {
			images = append(images, im)
			o := Outputs(im, f.Outputs)
			rows = append(rows, o)
			flat = append(flat, o...)
		}
	}
	d, _ := f.Verifier.ChallengeDigest(images)
	proof := FakeProof(f.VK, ledger.Statement{Commitment: f.Commitment, ChallengeDigest: d, Outputs: rows})
	if tamper {
		flat[0]++
	}
	return &ledgerv1.ChallengeProof{ModelId: rs[0].ModelID, RequestIds: ids, Outputs: flat, Proof: proof}
}

// Proof returns the server-signed proof transaction for rs.
func (f *Fixture) Proof(rs []*Request, tamper bool) []byte {
	return f.Sign(f.Server, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_ChallengeProof{ChallengeProof: f.ProofBody(rs, tamper)}})
}

// Verdict returns the client-signed verdict.
func (f *Fixture) Verdict(requestID string, accept bool) []byte {
	return f.Sign(f.Client, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_Verdict{Verdict: &ledgerv1.Verdict{RequestId: requestID, Accept: accept, Reason: "outputs match"}}})
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
