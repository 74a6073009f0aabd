package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/pixels"
)

// DefaultChainID is the chain id of a single embedded ledger (`veil ledger
// serve`, and the ledger inside `veil serve` unless configured otherwise).
const DefaultChainID = "veil-local"

// Limits enforced on every transaction. They are consensus rules: changing
// one changes which transactions are valid.
const (
	// MaxTxBytes bounds a SignedTx. The largest legitimate transactions are
	// a RegisterModel carrying a Groth16 verifying key (one G1 point per
	// public input: a few tens of KiB for hundreds of outputs) and a reveal
	// of MaxChallenges images.
	MaxTxBytes = 256 << 10
	// MaxIDLen bounds model, session, request and ceremony ids.
	MaxIDLen = 128
	// MaxTextLen bounds free text (architecture, attestation, reason).
	MaxTextLen = 4096
	// ChallengeImageBytes is the size of one challenge image.
	ChallengeImageBytes = pixels.Count
	// MaxChallenges bounds the challenges in one reveal.
	MaxChallenges = 64
	// MaxBlocks bounds k, the blocks in one request.
	MaxBlocks = 1024
	// MaxProofRequests bounds the requests covered by one proof.
	MaxProofRequests = 64
	// MaxOutputsPerChallenge bounds a model's outputs per challenge.
	MaxOutputsPerChallenge = 1024
	// MaxSaltBytes bounds the reveal salt.
	MaxSaltBytes = 64
	// MaxSpecBytes bounds a registered model spec.
	MaxSpecBytes = 16 << 10
)

// Domain-separation prefixes: a signature or hash made for one purpose can
// never be reused for another.
const (
	txSigDomain         = "veil/ledger/v1/tx\x00"
	clientRequestDomain = "veil/ledger/v3/client-request\x00"
	commitmentDomain    = "veil/ledger/v1/challenge-commitment\x00"
	requestKeyDomain    = "veil/ledger/v1/request-key\x00"
	serverConsentDomain = "veil/ledger/v1/server-consent\x00"
)

// Tx is a decoded transaction whose encoding, size and signature have been
// checked (everything that does not depend on the ledger state).
type Tx struct {
	Raw      []byte   // the SignedTx bytes: the Merkle leaf
	Hash     [32]byte // SHA-256 of Raw
	BodyHash [32]byte // SHA-256 of the signed body: replay protection
	Signer   ed25519.PublicKey
	Body     *ledgerv1.TxBody
}

// Rejection is a transaction rejected by the consensus rules.
type Rejection struct {
	Code   ledgerv1.Code
	Reason string
	// Index is, for CODE_DUPLICATE_TX, the log index of the transaction
	// already recorded, so that submitting twice is harmless.
	Index uint64
}

func (r *Rejection) Error() string {
	return fmt.Sprintf("ledger rejected transaction: %s: %s", r.Code, r.Reason)
}

func reject(code ledgerv1.Code, format string, a ...any) *Rejection {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, a...)}
}

// TxHash is the SHA-256 of a transaction's bytes, as clients see it.
func TxHash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// SigningDigest is what a transaction signature signs.
func SigningDigest(body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(txSigDomain))
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

var canonical = proto.MarshalOptions{Deterministic: true}

// SignTx encodes body canonically and signs it with key. The result is the
// transaction bytes to submit.
func SignTx(key ed25519.PrivateKey, body *ledgerv1.TxBody) ([]byte, error) {
	b, err := canonical.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode transaction body: %w", err)
	}
	d := SigningDigest(b)
	stx := &ledgerv1.SignedTx{
		Body:      b,
		Signer:    key.Public().(ed25519.PublicKey),
		Signature: ed25519.Sign(key, d[:]),
	}
	raw, err := canonical.Marshal(stx)
	if err != nil {
		return nil, fmt.Errorf("encode signed transaction: %w", err)
	}
	if limit := maxTxBytesFor(body); len(raw) > limit { // market.go: disputes may be larger
		return nil, reject(ledgerv1.Code_CODE_TOO_LARGE, "%d bytes > %d", len(raw), limit)
	}
	return raw, nil
}

// DecodeTx checks everything about a transaction that does not depend on
// the ledger state: size, canonical encoding, signature, chain id, and the
// shape of every field. It never panics on any input (fuzzed).
func DecodeTx(chainID string, raw []byte) (*Tx, *Rejection) {
	if len(raw) > MaxDisputeTxBytes {
		return nil, reject(ledgerv1.Code_CODE_TOO_LARGE, "%d bytes > %d", len(raw), MaxDisputeTxBytes)
	}
	var stx ledgerv1.SignedTx
	if err := proto.Unmarshal(raw, &stx); err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "signed transaction: %v", err)
	}
	if !isCanonical(&stx, raw) {
		return nil, reject(ledgerv1.Code_CODE_NON_CANONICAL, "signed transaction is not canonically encoded")
	}
	if len(stx.Signer) != ed25519.PublicKeySize || len(stx.Signature) != ed25519.SignatureSize {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "signer must be %d bytes and signature %d", ed25519.PublicKeySize, ed25519.SignatureSize)
	}
	var body ledgerv1.TxBody
	if err := proto.Unmarshal(stx.Body, &body); err != nil {
		return nil, reject(ledgerv1.Code_CODE_MALFORMED, "transaction body: %v", err)
	}
	if !isCanonical(&body, stx.Body) {
		return nil, reject(ledgerv1.Code_CODE_NON_CANONICAL, "transaction body is not canonically encoded")
	}
	if limit := maxTxBytesFor(&body); len(raw) > limit { // market.go: only disputes exceed MaxTxBytes
		return nil, reject(ledgerv1.Code_CODE_TOO_LARGE, "%d bytes > %d", len(raw), limit)
	}
	if body.ChainId != chainID {
		return nil, reject(ledgerv1.Code_CODE_WRONG_CHAIN, "chain id %q, this ledger is %q", trunc(body.ChainId), chainID)
	}
	d := SigningDigest(stx.Body)
	if !ed25519.Verify(stx.Signer, d[:], stx.Signature) {
		return nil, reject(ledgerv1.Code_CODE_BAD_SIGNATURE, "signature does not verify")
	}
	if rj := checkFields(&body); rj != nil {
		return nil, rj
	}
	return &Tx{
		Raw:      raw,
		Hash:     sha256.Sum256(raw),
		BodyHash: sha256.Sum256(stx.Body),
		Signer:   ed25519.PublicKey(stx.Signer),
		Body:     &body,
	}, nil
}

// isCanonical reports whether raw is the deterministic encoding of m, which
// rules out unknown fields, duplicated fields and reordered fields: any
// change to the bytes is a change to the meaning, so the hash of a body
// identifies it.
func isCanonical(m proto.Message, raw []byte) bool {
	if hasUnknown(m.ProtoReflect()) {
		return false // Go's marshaller would write unknown fields back verbatim
	}
	b, err := canonical.Marshal(m)
	return err == nil && bytes.Equal(b, raw)
}

func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func checkID(what, s string) *Rejection {
	if s == "" || len(s) > MaxIDLen || !utf8.ValidString(s) {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s must be 1..%d bytes of UTF-8", what, MaxIDLen)
	}
	return nil
}

func checkText(what, s string) *Rejection {
	if len(s) > MaxTextLen || !utf8.ValidString(s) {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s must be at most %d bytes of UTF-8", what, MaxTextLen)
	}
	return nil
}

func check32(what string, b []byte) *Rejection {
	if len(b) != 32 {
		return reject(ledgerv1.Code_CODE_INVALID_FIELD, "%s must be 32 bytes, got %d", what, len(b))
	}
	return nil
}

func firstRejection(rs ...*Rejection) *Rejection {
	for _, r := range rs {
		if r != nil {
			return r
		}
	}
	return nil
}

func checkFields(body *ledgerv1.TxBody) *Rejection {
	switch t := body.Tx.(type) {
	case *ledgerv1.TxBody_RegisterModel:
		m := t.RegisterModel
		if rj := firstRejection(checkID("model_id", m.ModelId), checkText("architecture", m.Architecture), check32("commitment", m.Commitment)); rj != nil {
			return rj
		}
		if len(m.VerifyingKey) == 0 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "verifying_key is empty")
		}
		if len(m.Spec) == 0 || len(m.Spec) > MaxSpecBytes {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "spec must be 1..%d bytes", MaxSpecBytes)
		}
		if m.ProofBatch == 0 || m.ProofBatch > MaxChallenges {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "proof_batch must be 1..%d", MaxChallenges)
		}
		if len(m.ServerKey) != ed25519.PublicKeySize || len(m.ServerSignature) != ed25519.SignatureSize {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "server_key must be %d bytes and server_signature %d", ed25519.PublicKeySize, ed25519.SignatureSize)
		}
		if m.OutputsPerChallenge == 0 || m.OutputsPerChallenge > MaxOutputsPerChallenge {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "outputs_per_challenge must be 1..%d", MaxOutputsPerChallenge)
		}
		if m.CeremonyId != "" {
			return checkID("ceremony_id", m.CeremonyId)
		}
	case *ledgerv1.TxBody_SetupContribution:
		s := t.SetupContribution
		if rj := firstRejection(checkID("ceremony_id", s.CeremonyId), check32("previous_hash", s.PreviousHash), check32("contribution_hash", s.ContributionHash), checkText("attestation", s.Attestation)); rj != nil {
			return rj
		}
		if s.Phase != 1 && s.Phase != 2 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "phase must be 1 or 2")
		}
	case *ledgerv1.TxBody_InferenceReceipt:
		r := t.InferenceReceipt
		if rj := firstRejection(checkID("model_id", r.ModelId), checkID("request_id", r.RequestId), check32("keys_digest", r.KeysDigest),
			check32("input_digest", r.InputDigest), check32("output_digest", r.OutputDigest), check32("challenge_commitment", r.ChallengeCommitment)); rj != nil {
			return rj
		}
		if r.NumBlocks < 2 || r.NumBlocks > MaxBlocks {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "num_blocks must be 2..%d", MaxBlocks)
		}
		if len(r.ClientKey) != ed25519.PublicKeySize || len(r.ClientSignature) != ed25519.SignatureSize {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "client_key must be %d bytes and client_signature %d", ed25519.PublicKeySize, ed25519.SignatureSize)
		}
		if r.Price > MaxSupply {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "price %d exceeds the maximum supply", r.Price)
		}
		d := ClientRequestDigest(body.ChainId, r.ModelId, r.RequestId, r.KeysDigest, r.InputDigest, r.ChallengeCommitment, r.NumBlocks, r.Price)
		if !ed25519.Verify(r.ClientKey, d[:], r.ClientSignature) {
			return reject(ledgerv1.Code_CODE_BAD_SIGNATURE, "client signature on the request does not verify")
		}
	case *ledgerv1.TxBody_ChallengeReveal:
		r := t.ChallengeReveal
		if rj := firstRejection(checkID("model_id", r.ModelId), checkID("request_id", r.RequestId)); rj != nil {
			return rj
		}
		n := len(r.Challenges)
		if n == 0 || n > MaxChallenges || len(r.Positions) != n {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "need 1..%d challenges and one position each", MaxChallenges)
		}
		for i, c := range r.Challenges {
			if len(c) != ChallengeImageBytes {
				return reject(ledgerv1.Code_CODE_INVALID_FIELD, "challenge %d has %d bytes, want %d", i, len(c), ChallengeImageBytes)
			}
		}
		if len(r.Salt) > MaxSaltBytes {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "salt longer than %d bytes", MaxSaltBytes)
		}
	case *ledgerv1.TxBody_ChallengeProof:
		p := t.ChallengeProof
		if rj := checkID("model_id", p.ModelId); rj != nil {
			return rj
		}
		if len(p.RequestKeys) == 0 || len(p.RequestKeys) > MaxProofRequests {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "a proof covers 1..%d requests", MaxProofRequests)
		}
		seen := make(map[string]bool, len(p.RequestKeys))
		for _, k := range p.RequestKeys {
			if len(k) != 32 {
				return reject(ledgerv1.Code_CODE_BAD_REQUEST_KEY, "request keys are 32 bytes, got %d", len(k))
			}
			if seen[string(k)] {
				return reject(ledgerv1.Code_CODE_INVALID_FIELD, "request %x listed twice", k[:8])
			}
			seen[string(k)] = true
		}
		if len(p.Proof) == 0 {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "proof is empty")
		}
	case *ledgerv1.TxBody_Verdict:
		v := t.Verdict
		if rj := firstRejection(checkID("model_id", v.ModelId), checkID("request_id", v.RequestId)); rj != nil {
			return rj
		}
		if _, ok := ledgerv1.VerdictReason_name[int32(v.Reason)]; !ok || v.Reason == ledgerv1.VerdictReason_VERDICT_REASON_UNSPECIFIED {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "verdict reason %d is not a known reason code", v.Reason)
		}
		if v.Accept != (v.Reason == ledgerv1.VerdictReason_VERDICT_REASON_MATCH) {
			return reject(ledgerv1.Code_CODE_INVALID_FIELD, "an accepting verdict has reason MATCH and a rejecting one any other reason")
		}
	case *ledgerv1.TxBody_Transfer, *ledgerv1.TxBody_ProviderOffer, *ledgerv1.TxBody_Unbond, *ledgerv1.TxBody_Withdraw, *ledgerv1.TxBody_Dispute:
		return checkMarketFields(body) // market.go
	default:
		if ok, rj := checkTrainingFields(body); ok {
			return rj
		}
		if ok, rj := checkCeremonyFields(body); ok { // ceremony.go
			return rj
		}
		return reject(ledgerv1.Code_CODE_MALFORMED, "transaction body has no known transaction type")
	}
	return nil
}

// ClientRequestDigest is what the client signs when it sends a request, so
// that a receipt cannot claim a chain, key bundle, input, commitment or
// price the client did not send (the receipt locks exactly price in the
// request's escrow: a server cannot charge more). The encoding is
// fixed-width or length-prefixed field by field, so it is unambiguous and
// easy to reproduce outside Go.
func ClientRequestDigest(chainID, modelID, requestID string, keysDigest, inputDigest, challengeCommitment []byte, numBlocks uint32, price uint64) [32]byte {
	h := sha256.New()
	h.Write([]byte(clientRequestDomain))
	writeLP(h, []byte(chainID))
	writeLP(h, []byte(modelID))
	writeLP(h, []byte(requestID))
	writeLP(h, keysDigest)
	writeLP(h, inputDigest)
	writeLP(h, challengeCommitment)
	var n [12]byte
	binary.BigEndian.PutUint32(n[:4], numBlocks)
	binary.BigEndian.PutUint64(n[4:], price)
	h.Write(n[:])
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// RequestKey identifies a request on the ledger: the client chooses the
// request id, but the key also binds the model and the client's key, so
// nobody can take (squat) another client's request id.
func RequestKey(modelID string, clientKey []byte, requestID string) [32]byte {
	h := sha256.New()
	h.Write([]byte(requestKeyDomain))
	writeLP(h, []byte(modelID))
	writeLP(h, clientKey)
	writeLP(h, []byte(requestID))
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// ServerConsentDigest is what a model's server key signs to agree to serve
// the model registered by owner: without it anyone could register a model
// under somebody else's server key.
func ServerConsentDigest(chainID string, owner []byte, m *ledgerv1.RegisterModel) [32]byte {
	h := sha256.New()
	h.Write([]byte(serverConsentDomain))
	writeLP(h, []byte(chainID))
	writeLP(h, owner)
	writeLP(h, []byte(m.GetModelId()))
	writeLP(h, m.GetCommitment())
	writeLP(h, digest32(m.GetVerifyingKey()))
	writeLP(h, digest32(m.GetSpec()))
	writeLP(h, m.GetServerKey())
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], m.GetProofBatch())
	binary.BigEndian.PutUint32(n[4:], m.GetOutputsPerChallenge())
	h.Write(n[:])
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// ChallengeCommitment is the client's commitment to its hidden challenges:
// SHA-256 over the domain, the count, each image and its block position,
// and the salt (each length-prefixed). The client sends it with the request
// and opens it in the ChallengeReveal.
func ChallengeCommitment(challenges [][]byte, positions []uint32, salt []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(commitmentDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(challenges)))
	h.Write(n[:])
	for i, c := range challenges {
		writeLP(h, c)
		var p [4]byte
		if i < len(positions) {
			binary.BigEndian.PutUint32(p[:], positions[i])
		}
		h.Write(p[:])
	}
	writeLP(h, salt)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

type byteWriter interface{ Write([]byte) (int, error) }

func writeLP(h byteWriter, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
