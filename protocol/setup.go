package protocol

// The steps of a multi-party trusted setup as the veil command runs them:
// in a shared directory (zk/mpcsetup's ceremony), or on a ledger.

import (
	"context"
	"fmt"
	"time"

	"github.com/veil-project/veil/circuits"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// DirCeremony is a ceremony in directory Dir for the circuit of a model
// file (Model; empty: the default model) proving Batch challenges. Each
// step returns what it did, in words.
type DirCeremony struct {
	Dir, Model string
	Batch      int
	// Store gives the progress of the checks and installs the final keys.
	Store LocalStore
}

// SpecOf is the circuit descriptor of the model file at path (the default
// model when empty).
func SpecOf(path string) (*circuits.Spec, error) {
	f, err := model.LoadOrDefault(path)
	if err != nil {
		return nil, err
	}
	return circuits.SpecOf(f.Model)
}

// Init starts the ceremony.
func (c DirCeremony) Init(context.Context) (string, error) {
	spec, err := SpecOf(c.Model)
	if err != nil {
		return "", err
	}
	ci, err := mpcsetup.CeremonyInit(c.Dir, spec, c.Batch)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ceremony for circuit %.16s, batch %d: %d constraints, domain %d\n", ci.ModelID, ci.Batch, ci.Constraints, ci.Domain), nil
}

// Contribute adds a random contribution to the current phase.
func (c DirCeremony) Contribute(ctx context.Context) (string, error) {
	p, h, err := mpcsetup.CeremonyContribute(ctx, c.Dir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s\nsha256 %x (publish it: it lets anyone check your contribution is in the chain)\n", p, h), nil
}

// Verify checks every contribution so far.
func (c DirCeremony) Verify(ctx context.Context) (string, error) {
	spec, err := SpecOf(c.Model)
	if err != nil {
		return "", err
	}
	n1, n2, err := mpcsetup.CeremonyVerify(ctx, c.Dir, spec, c.Batch, c.Store.Progress)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("OK: %d phase-1 and %d phase-2 contributions verified\n", n1, n2), nil
}

// ClosePhase1 verifies and seals phase 1 with the beacon and opens phase 2.
func (c DirCeremony) ClosePhase1(ctx context.Context, beacon []byte) (string, error) {
	spec, err := SpecOf(c.Model)
	if err != nil {
		return "", err
	}
	if err := mpcsetup.CeremonyClosePhase1(ctx, c.Dir, spec, c.Batch, beacon, c.Store.Progress); err != nil {
		return "", err
	}
	return "phase 1 sealed; phase 2 open for contributions\n", nil
}

// Finalize verifies the whole ceremony, seals phase 2 with the beacon and
// installs the keys in the store.
func (c DirCeremony) Finalize(ctx context.Context, beacon []byte) (string, error) {
	spec, err := SpecOf(c.Model)
	if err != nil {
		return "", err
	}
	pk, err := mpcsetup.CeremonyFinalize(ctx, c.Dir, spec, c.Batch, beacon, c.Store.Progress)
	if err != nil {
		return "", err
	}
	kd, err := c.Store.InstallKeys(pk)
	if err != nil {
		return "", err
	}
	h := pk.VK.Hash()
	return fmt.Sprintf("keys installed in %s\nverifying key sha256 %x\n", kd, h), nil
}

// SealOnLedger closes ledger ceremony id and seals it with the beacon of a
// later block (CloseAndSeal).
func SealOnLedger(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id string) (string, error) {
	rec, err := CloseAndSeal(ctx, api, s, id, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	out := fmt.Sprintf("ceremony %s sealed with %d contributions and the beacon of block %d (%x)\n", id, len(rec.GetContributions()), rec.GetBeaconHeight(), rec.GetBeacon())
	if len(rec.GetVerifyingKeyHash()) > 0 {
		out += fmt.Sprintf("the ledger derived verifying key %x\n", rec.GetVerifyingKeyHash())
	}
	return out, nil
}

// OpenOnLedger opens phase 2 ceremony id for the circuit of the model file
// at path (OpenPhase2).
func OpenOnLedger(ctx context.Context, api ledger.CeremonyAPI, s ledger.Signer, id, path string, batch int) (string, error) {
	spec, err := SpecOf(path)
	if err != nil {
		return "", err
	}
	if _, err := OpenPhase2(ctx, api, s, id, spec, batch); err != nil {
		return "", err
	}
	sid := spec.ID()
	return fmt.Sprintf("phase 2 %s opened for circuit %x, batch %d: contribute with `veil setup contribute --ledger ADDR --ceremony %s`\n", id, sid[:8], batch, id), nil
}

// ContributeOnLedger contributes to ledger ceremony id (ContributeToLedger)
// with the identity at keyPath (default: the client's), the node at addr
// verifying it.
func (s LocalStore) ContributeOnLedger(ctx context.Context, addr, id, keyPath string) (string, error) {
	key, err := s.Identity(keyPath)
	if err != nil {
		return "", err
	}
	c, err := query.Dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := ContributeToLedger(ctx, c, key, id, "veil setup contribute")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("contributed to ceremony %s: verified by the node and logged at index %d\ncontribution %x\n"+
		"(keep it: `veil setup check --ledger %s --ceremony %s --hash %x` finds it in the transcript)\n",
		res.Ceremony, res.Index, res.Hash, addr, res.Ceremony, res.Hash), nil
}
