package server

import (
	"container/list"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/veil-project/veil/he"
)

// session holds one client's uploaded keys for one model.
type session struct {
	id         string
	modelID    string
	keys       *he.EvaluationKeys
	keysDigest [32]byte // SHA-256 of the uploaded bundle
	peer       string   // client address (host), for the per-peer cap
	bytes      int      // memory accounted for this session
	lastUsed   time.Time
	inUse      int
	elem       *list.Element // position in the LRU list
}

// sessionStore is an LRU cache of sessions with a byte cap, a count cap and
// an idle timeout. Expired ids are remembered for a while so that a client
// is told "expired" rather than "unknown".
type sessionStore struct {
	mu         sync.Mutex
	byID       map[string]*session
	lru        *list.List // front = most recently used
	expired    map[string]time.Time
	perPeer    map[string]int
	used       int
	maxBytes   int
	maxCount   int
	maxPerPeer int
	idle       time.Duration
	now        func() time.Time
	// dir, when set, keeps key bundles on disk so sessions survive a restart.
	dir string
}

var (
	errUnknownSession = errors.New("unknown session")
	errExpiredSession = errors.New("session expired")
	errSessionsFull   = errors.New("session capacity exhausted")
)

func newSessionStore(maxBytes, maxCount, maxPerPeer int, idle time.Duration, dir string, now func() time.Time) *sessionStore {
	return &sessionStore{
		byID: map[string]*session{}, lru: list.New(), expired: map[string]time.Time{}, perPeer: map[string]int{},
		maxBytes: maxBytes, maxCount: maxCount, maxPerPeer: maxPerPeer, idle: idle, now: now, dir: dir,
	}
}

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// add stores a new session, evicting idle sessions if the caps require
// it: first the newcomer's own peer's, when it is at its per-peer cap; then
// the least recently used idle session of the peer holding the most
// sessions, so that opening many sessions evicts one's own first.
func (s *sessionStore) add(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.bytes > s.maxBytes {
		return fmt.Errorf("%w: keys of %d bytes exceed the %d-byte cap", errSessionsFull, sess.bytes, s.maxBytes)
	}
	for s.maxPerPeer > 0 && s.perPeer[sess.peer]+1 > s.maxPerPeer {
		if !s.evictOneLocked(func(o *session) bool { return o.peer == sess.peer }) {
			return fmt.Errorf("%w: this client holds %d sessions, all busy", errSessionsFull, s.perPeer[sess.peer])
		}
	}
	for s.used+sess.bytes > s.maxBytes || len(s.byID)+1 > s.maxCount {
		biggest := s.largestPeerLocked(sess.peer)
		if !s.evictOneLocked(func(o *session) bool { return o.peer == biggest }) && !s.evictOneLocked(func(*session) bool { return true }) {
			return fmt.Errorf("%w: %d sessions hold %d bytes and all are busy", errSessionsFull, len(s.byID), s.used)
		}
	}
	sess.lastUsed = s.now()
	sess.elem = s.lru.PushFront(sess)
	s.byID[sess.id] = sess
	s.used += sess.bytes
	s.perPeer[sess.peer]++
	return nil
}

// canAdd tells, before an upload, whether a session of peer could be
// added: not when the peer is at its cap with every session busy.
func (s *sessionStore) canAdd(peer string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maxPerPeer == 0 || s.perPeer[peer] < s.maxPerPeer {
		return nil
	}
	for e := s.lru.Back(); e != nil; e = e.Prev() {
		if o := e.Value.(*session); o.peer == peer && o.inUse == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: this client holds %d sessions, all busy", errSessionsFull, s.perPeer[peer])
}

// largestPeerLocked is the peer holding the most sessions, counting the
// newcomer's; ties go to the newcomer's peer.
func (s *sessionStore) largestPeerLocked(newcomer string) string {
	best, n := newcomer, s.perPeer[newcomer]+1
	for p, c := range s.perPeer {
		if c > n {
			best, n = p, c
		}
	}
	return best
}

// evictOneLocked drops the least recently used session not in use among
// those that match.
func (s *sessionStore) evictOneLocked(match func(*session) bool) bool {
	for e := s.lru.Back(); e != nil; e = e.Prev() {
		sess := e.Value.(*session)
		if sess.inUse == 0 && match(sess) {
			s.removeLocked(sess, true)
			return true
		}
	}
	return false
}

func (s *sessionStore) removeLocked(sess *session, remember bool) {
	s.lru.Remove(sess.elem)
	delete(s.byID, sess.id)
	s.used -= sess.bytes
	if s.perPeer[sess.peer]--; s.perPeer[sess.peer] <= 0 {
		delete(s.perPeer, sess.peer)
	}
	if remember {
		s.expired[sess.id] = s.now()
	}
	if s.dir != "" {
		_ = os.Remove(s.keyPath(sess.id))
	}
}

// acquire returns a live session and marks it in use; release must follow.
func (s *sessionStore) acquire(id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if !ok {
		if _, gone := s.expired[id]; gone {
			return nil, errExpiredSession
		}
		return nil, errUnknownSession
	}
	if sess.inUse == 0 && s.now().Sub(sess.lastUsed) > s.idle {
		s.removeLocked(sess, true)
		return nil, errExpiredSession
	}
	sess.inUse++
	sess.lastUsed = s.now()
	s.lru.MoveToFront(sess.elem)
	return sess, nil
}

func (s *sessionStore) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess.inUse--
	sess.lastUsed = s.now()
}

// remove forgets a session; it reports whether it existed.
func (s *sessionStore) remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if ok {
		s.removeLocked(sess, false)
	}
	return ok
}

// sweep expires idle sessions and forgets old tombstones.
func (s *sessionStore) sweep() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for e := s.lru.Back(); e != nil; {
		prev := e.Prev()
		sess := e.Value.(*session)
		if sess.inUse == 0 && now.Sub(sess.lastUsed) > s.idle {
			s.removeLocked(sess, true)
			n++
		}
		e = prev
	}
	for id, t := range s.expired {
		if now.Sub(t) > 24*time.Hour {
			delete(s.expired, id)
		}
	}
	return n
}

func (s *sessionStore) stats() (count, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID), s.used
}

// keyPath is where a session's key bundle is kept when persistence is on.
func (s *sessionStore) keyPath(id string) string { return filepath.Join(s.dir, id+".keys") }

// persist writes a session's model id and key bundle (public material) to
// disk with mode 0600: uint16 length, model id, bundle.
func (s *sessionStore) persist(id, modelID string, bundle []byte) error {
	if s.dir == "" {
		return nil
	}
	buf := binary.LittleEndian.AppendUint16(nil, uint16(len(modelID)))
	buf = append(buf, modelID...)
	buf = append(buf, bundle...)
	path := s.keyPath(id)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf, 0o600); err != nil {
		return fmt.Errorf("persist session: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("persist session: %w", err)
	}
	return nil
}

// persisted lists the sessions on disk: id -> (model id, bundle).
func (s *sessionStore) persisted() (map[string][2][]byte, error) {
	out := map[string][2][]byte{}
	if s.dir == "" {
		return out, nil
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".keys") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(data) < 2 {
			continue
		}
		n := int(binary.LittleEndian.Uint16(data))
		if len(data) < 2+n {
			continue
		}
		out[strings.TrimSuffix(name, ".keys")] = [2][]byte{data[2 : 2+n], data[2+n:]}
	}
	return out, nil
}
