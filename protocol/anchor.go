package protocol

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/zk"
)

// LedgerTrust says which ledger node a verifier talks to and what it
// trusts about it, as a command line gives it (keys in hex; the error
// messages name the veil command's flags). There is no default node: the
// one a client trusts must not be chosen by the server it checks.
type LedgerTrust struct {
	Addr, TLSCA string
	// NodeKey (a single node's checkpoint key) or Genesis (a replicated
	// chain's genesis file): exactly one.
	NodeKey, Genesis string
	ChainID          string
	// PinCommitment and PinServer pin the model's registration; so do
	// RequireCeremony and Contributors (hex keys, or "self").
	PinCommitment, PinServer string
	RequireCeremony          bool
	Contributors             []string
}

// hexKey reads an ed25519 public key written in hex.
func hexKey(s string) (ed25519.PublicKey, bool) {
	k, err := hex.DecodeString(s)
	return k, err == nil && len(k) == ed25519.PublicKeySize
}

// Check tells what is wrong with the settings, before anything is dialled
// or read: every error it returns is about them.
func (l LedgerTrust) Check() error {
	if l.Addr == "" {
		return errors.New("--ledger: name the verifier ledger node to use (the server's own is not a default: it is the party being checked)")
	}
	if (l.NodeKey == "") == (l.Genesis == "") {
		return errors.New("give --ledger-key (a single node you trust) or --ledger-genesis (a replicated chain's validators)")
	}
	if _, ok := hexKey(l.NodeKey); l.NodeKey != "" && !ok {
		return errors.New("--ledger-key: want 64 hex digits (an ed25519 public key)")
	}
	_, err := l.pin(nil)
	return err
}

// Pin is what the settings pin about the model's registration (model ids
// are first come, first served); self is the client's own key, for
// "self" in Contributors.
func (l LedgerTrust) Pin(self func() (ed25519.PublicKey, error)) (Pin, error) {
	if self == nil {
		return Pin{}, errors.New("pin: no self key")
	}
	return l.pin(self)
}

// pin parses the pins; with self nil, "self" is only checked for.
func (l LedgerTrust) pin(self func() (ed25519.PublicKey, error)) (Pin, error) {
	var p Pin
	if l.PinCommitment != "" {
		c, err := zk.ParseCommitment(l.PinCommitment)
		if err != nil {
			return p, fmt.Errorf("--pin-commitment: %v", err)
		}
		p.Commitment = &c
	}
	if l.PinServer != "" {
		k, ok := hexKey(l.PinServer)
		if !ok {
			return p, errors.New("--pin-server-key: want 64 hex digits (an ed25519 public key)")
		}
		p.ServerKey = k
	}
	p.RequireCeremony = l.RequireCeremony
	for _, c := range l.Contributors {
		if c == "self" {
			if self == nil {
				continue
			}
			k, err := self()
			if err != nil {
				return p, fmt.Errorf("--trust-contributor self: %w", err)
			}
			p.Contributors = append(p.Contributors, k)
			continue
		}
		k, ok := hexKey(c)
		if !ok {
			return p, fmt.Errorf("--trust-contributor %q: want 64 hex digits (an ed25519 public key) or 'self'", c)
		}
		p.Contributors = append(p.Contributors, k)
	}
	return p, nil
}

// Dial connects to the node and pins the anchor (trust.Dial).
func (l LedgerTrust) Dial(ctx context.Context) (*trust.Reader, *query.Client, error) {
	if err := l.Check(); err != nil {
		return nil, nil, err
	}
	o := trust.DialOptions{Addr: l.Addr, TLSCA: l.TLSCA, GenesisFile: l.Genesis, ChainID: l.ChainID}
	if l.NodeKey != "" {
		o.NodeKey, _ = hexKey(l.NodeKey)
	}
	return trust.Dial(ctx, o)
}

// Classify runs ClassifyVerified for o with the ledger these settings trust
// (o.Ledger and o.Pin are theirs); self is the client's own key, for "self"
// in Contributors. A rejected answer is returned with an error.
func (l LedgerTrust) Classify(ctx context.Context, o VerifiedOptions, self func() (ed25519.PublicKey, error)) (*VerifiedResult, error) {
	reader, lc, err := l.Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer lc.Close()
	if o.Pin, err = l.Pin(self); err != nil {
		return nil, err
	}
	o.Ledger = reader
	v, err := ClassifyVerified(ctx, o)
	if err != nil {
		return nil, err
	}
	if !v.Accept {
		return v, errors.New("the server's answer was rejected")
	}
	return v, nil
}
