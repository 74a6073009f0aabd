package server

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func sess(id, peer string) *session { return &session{id: id, modelID: "m", peer: peer, bytes: 1} }

// One client opening many sessions evicts its own, never another
// client's: the per-peer cap bounds what it holds, and when the server is
// full the peer holding the most sessions loses its least recently used.
func TestOneClientCannotFlushOthersSessions(t *testing.T) {
	now := time.Unix(0, 0)
	s := newSessionStore(1<<30, 8, 4, time.Hour, "", func() time.Time { return now })
	for _, id := range []string{"v1", "v2"} {
		if err := s.add(sess(id, "victim")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 64; i++ {
		now = now.Add(time.Second)
		if err := s.add(sess(fmt.Sprintf("a%d", i), "attacker")); err != nil {
			t.Fatalf("attacker session %d: %v", i, err)
		}
	}
	for _, id := range []string{"v1", "v2"} {
		if _, err := s.acquire(id); err != nil {
			t.Fatalf("victim's session %s was evicted by another client's 64 sessions: %v", id, err)
		}
	}
	if n := s.perPeer["attacker"]; n != 4 {
		t.Fatalf("the attacker holds %d sessions, the per-peer cap is 4", n)
	}
	// Fill the server with other peers: the biggest holder pays first.
	for i := 0; i < 4; i++ {
		if err := s.add(sess(fmt.Sprintf("o%d", i), fmt.Sprintf("peer%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.perPeer["attacker"] >= 4 || s.perPeer["victim"] != 2 {
		t.Fatalf("after filling the server: attacker %d, victim %d sessions", s.perPeer["attacker"], s.perPeer["victim"])
	}
}

// A peer at its cap whose sessions are all busy is refused, not served by
// evicting someone else.
func TestPerPeerCapRefusesWhenAllBusy(t *testing.T) {
	s := newSessionStore(1<<30, 64, 2, time.Hour, "", time.Now)
	for _, id := range []string{"a", "b"} {
		if err := s.add(sess(id, "p")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.acquire(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.add(sess("c", "p")); !errors.Is(err, errSessionsFull) {
		t.Fatalf("third session of a peer whose two are busy: %v", err)
	}
	if err := s.add(sess("d", "q")); err != nil {
		t.Fatalf("another peer refused: %v", err)
	}
}

// A peer at its cap with every session busy is told before it uploads.
func TestFullPeerIsRefusedBeforeUpload(t *testing.T) {
	s := newSessionStore(1<<30, 64, 1, time.Hour, "", time.Now)
	if err := s.canAdd("p"); err != nil {
		t.Fatal(err)
	}
	if err := s.add(sess("a", "p")); err != nil {
		t.Fatal(err)
	}
	if err := s.canAdd("p"); err != nil {
		t.Fatalf("an idle session can be evicted for the new one: %v", err)
	}
	if _, err := s.acquire("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.canAdd("p"); !errors.Is(err, errSessionsFull) {
		t.Fatalf("peer at its cap, all busy: %v", err)
	}
	if err := s.canAdd("q"); err != nil {
		t.Fatalf("another peer: %v", err)
	}
}

// IPv6 clients of one /64 are one peer; IPv4 addresses stay distinct.
func TestPeersAreGroupedByIPv6Prefix(t *testing.T) {
	a, b := peerOfAddr("[2001:db8:1:2::1]:5000"), peerOfAddr("[2001:db8:1:2:ffff::9]:6000")
	c := peerOfAddr("[2001:db8:1:3::1]:5000")
	if a != b || a == c {
		t.Fatalf("IPv6 peers: %q %q %q", a, b, c)
	}
	if peerOfAddr("10.0.0.1:1") == peerOfAddr("10.0.0.2:1") {
		t.Fatal("two IPv4 addresses grouped")
	}
}
