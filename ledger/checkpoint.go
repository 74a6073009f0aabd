package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Checkpoints are signed notes in the style of the transparency-dev /
// Go checksum database note format:
//
//	veil-ledger/<chain id>
//	<log size>
//	<base64 root hash>
//	height <block height>
//	state <hex state hash>
//
//	— <key name> <base64(4-byte key id || ed25519 signature)>
//
// The first three lines are the standard checkpoint body; the extension
// lines bind the state hash, so a signed checkpoint also pins the app hash.

const appHashDomain = "veil/ledger/v1/app-hash\x00"

// Origin is the first line of a chain's checkpoints.
func Origin(chainID string) string { return "veil-ledger/" + chainID }

// AppHash is the hash CometBFT agrees on: the log size and root and the
// state hash.
func AppHash(size uint64, root, stateHash []byte) []byte {
	h := sha256.New()
	h.Write([]byte(appHashDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], size)
	h.Write(n[:])
	h.Write(root)
	h.Write(stateHash)
	return h.Sum(nil)
}

func checkpointText(origin string, size uint64, root []byte, height uint64, stateHash []byte) string {
	return fmt.Sprintf("%s\n%d\n%s\nheight %d\nstate %s\n", origin, size, base64.StdEncoding.EncodeToString(root), height, hex.EncodeToString(stateHash))
}

// KeyName is the note key name of an ed25519 checkpoint key.
func KeyName(pub ed25519.PublicKey) string { return "veil-ledger-" + hex.EncodeToString(pub[:8]) }

// keyID follows the note format: the first 4 bytes of
// SHA-256(name || "\n" || 0x01 || public key), 0x01 meaning ed25519.
func keyID(name string, pub ed25519.PublicKey) []byte {
	h := sha256.New()
	h.Write([]byte(name + "\n\x01"))
	h.Write(pub)
	return h.Sum(nil)[:4]
}

// SignCheckpoint builds and signs a checkpoint.
func SignCheckpoint(key ed25519.PrivateKey, origin string, size uint64, root []byte, height uint64, stateHash []byte) *ledgerv1.Checkpoint {
	pub := key.Public().(ed25519.PublicKey)
	text := checkpointText(origin, size, root, height, stateHash)
	name := KeyName(pub)
	sig := append(keyID(name, pub), ed25519.Sign(key, []byte(text))...)
	note := text + "\n\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	return &ledgerv1.Checkpoint{
		Origin: origin, Size: size, RootHash: root, Height: height, StateHash: stateHash,
		AppHash: AppHash(size, root, stateHash), Note: []byte(note), SignerKey: pub,
	}
}

// VerifyCheckpoint checks that cp's note is signed by trusted and that its
// parsed fields are exactly what the note says. Pass trusted = nil to trust
// the key inside the checkpoint (only meaningful if you check it elsewhere).
func VerifyCheckpoint(cp *ledgerv1.Checkpoint, trusted ed25519.PublicKey) error {
	if cp == nil {
		return errors.New("no checkpoint")
	}
	if trusted == nil {
		trusted = cp.SignerKey
	}
	if len(trusted) != ed25519.PublicKeySize {
		return errors.New("checkpoint key is not an ed25519 public key")
	}
	note := string(cp.Note)
	i := strings.Index(note, "\n\n")
	if i < 0 {
		return errors.New("checkpoint note has no signature block")
	}
	text, sigs := note[:i+1], note[i+2:]
	name := KeyName(trusted)
	id := keyID(name, trusted)
	verified := false
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "\u2014 "))
		if !strings.HasPrefix(line, "\u2014 ") || len(f) != 2 || f[0] != name {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(sig) != 4+ed25519.SignatureSize || !bytes.Equal(sig[:4], id) {
			continue
		}
		if ed25519.Verify(trusted, []byte(text), sig[4:]) {
			verified = true
			break
		}
	}
	if !verified {
		return fmt.Errorf("checkpoint is not signed by %s", name)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 5 {
		return fmt.Errorf("checkpoint note has %d lines, want 5", len(lines))
	}
	size, err1 := strconv.ParseUint(lines[1], 10, 64)
	root, err2 := base64.StdEncoding.DecodeString(lines[2])
	height, err3 := strconv.ParseUint(strings.TrimPrefix(lines[3], "height "), 10, 64)
	state, err4 := hex.DecodeString(strings.TrimPrefix(lines[4], "state "))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fmt.Errorf("checkpoint note: %w", err)
	}
	if lines[0] != cp.Origin || size != cp.Size || !bytes.Equal(root, cp.RootHash) || height != cp.Height || !bytes.Equal(state, cp.StateHash) {
		return errors.New("checkpoint fields do not match its signed note")
	}
	if !bytes.Equal(cp.AppHash, AppHash(size, root, state)) {
		return errors.New("checkpoint app hash does not match its signed note")
	}
	return nil
}
