package protocol

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/heverify"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/zkverify"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// ServiceOptions configure the verifiable side of an inference server
// (`veil serve --verifiable`).
type ServiceOptions struct {
	Models []*model.Model
	// Keys returns a model's salt and Groth16 keys (made the first time).
	Keys func(ctx context.Context, m *model.File) (zk.Salt, *zk.ProvingKey, error)
	// LedgerAddr is a ledger node's gRPC address. Empty: an embedded node
	// in LedgerDir, serving its gRPC API on LedgerListen (for local
	// experiments: a client that checks this server should not trust a
	// node the server runs).
	LedgerAddr   string
	LedgerDir    string
	LedgerListen string
	// ChainID must be the remote node's when set; default its own, or
	// ledger.DefaultChainID for an embedded node.
	ChainID   string
	ServerKey ed25519.PrivateKey
	// Offer, when set, offers every model at this price and stake
	// (market.go): the server key must hold the stake and the fees. An
	// embedded ledger is then created with the market's rules, the server
	// key funded with Stake per model plus 10 VEIL, and Fund's balances.
	Offer *OfferOptions
	Fund  []ledger.Allocation
	// Ceremony, when set, names the sealed ledger ceremony whose key every
	// model uses: the proving key is rebuilt from its transcript on the
	// ledger (cached in KeyDir), the registration names it, and Salt gives
	// the models' salts (Keys is not called).
	Ceremony string
	Salt     func(ctx context.Context, m *model.File) (zk.Salt, error)
	KeyDir   string
	Log      *slog.Logger
	// Progress receives a line per step (what was opened, registered).
	Progress io.Writer
}

// Service is a server's verifiable side: its models deployed on a ledger,
// the recorder the server calls and the prover running in the background.
type Service struct {
	Recorder    *Recorder
	Commitments map[string][]byte
	stops       []func()
}

// Stop stops the prover, waits for receipts in flight, and closes the
// ledger connection (or the embedded node).
func (s *Service) Stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// StartService opens (or connects to) the ledger, deploys every model and
// starts the prover.
func StartService(ctx context.Context, o ServiceOptions) (_ *Service, err error) {
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format, a...)
		}
	}
	s := &Service{Commitments: map[string][]byte{}}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	api, chainID, err := s.openLedger(ctx, o, say)
	if err != nil {
		return nil, err
	}
	var deps []*Deployment
	for _, m := range o.Models {
		f := &model.File{Model: m}
		if err := f.Encode(io.Discard); err != nil { // computes the checksum that names the salt
			return nil, err
		}
		var salt zk.Salt
		var pk *zk.ProvingKey
		if o.Ceremony != "" {
			if salt, err = o.Salt(ctx, f); err == nil {
				pk, err = CeremonyKeys(ctx, api, o.Ceremony, o.KeyDir, say)
			}
		} else {
			salt, pk, err = o.Keys(ctx, f)
		}
		if err != nil {
			return nil, err
		}
		d, err := Deploy(ctx, DeployOptions{Model: m, Salt: salt, Keys: pk, Ledger: api, ChainID: chainID, Owner: o.ServerKey, Server: o.ServerKey, Log: o.Log, Offer: o.Offer,
			CeremonyID: o.Ceremony})
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
		s.Commitments[m.Name] = d.Commitment[:]
		say("veil: model %s committed (%s) and registered\n", m.Name, d.Commitment)
		if d.Offer != nil {
			say("veil: offered at %d per image with %d staked (units of 10^-6 VEIL)\n", d.Offer.GetPrice(), d.Offer.GetBonded())
		}
	}
	var prover *Prover
	s.Recorder, prover = Combine(deps)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = prover.Run(pctx, 200*time.Millisecond) }()
	s.stops = append(s.stops, func() { cancel(); <-done; s.Recorder.Wait() })
	return s, nil
}

func (s *Service) openLedger(ctx context.Context, o ServiceOptions, say func(string, ...any)) (ledger.API, string, error) {
	if o.LedgerAddr != "" {
		c, err := query.Dial(o.LedgerAddr)
		if err != nil {
			return nil, "", err
		}
		s.stops = append(s.stops, func() { c.Close() })
		ci, err := c.ChainInfo(ctx)
		if err != nil {
			return nil, "", err
		}
		if o.ChainID != "" && o.ChainID != ci.GetChainId() {
			return nil, "", fmt.Errorf("chain id %q, the ledger node is on %q", o.ChainID, ci.GetChainId())
		}
		return c, ci.GetChainId(), nil
	}
	if o.ChainID == "" {
		o.ChainID = ledger.DefaultChainID
	}
	if o.LedgerDir == "" || o.LedgerListen == "" {
		return nil, "", errors.New("an embedded ledger needs a directory and a listen address")
	}
	key, _, err := ledger.LoadOrCreateNodeKey(filepath.Join(o.LedgerDir, "node.key"))
	if err != nil {
		return nil, "", err
	}
	var params ledger.Params
	if o.Offer != nil || len(o.Fund) > 0 {
		m := ledger.MarketDefaults()
		m.Genesis = append(m.Genesis, o.Fund...)
		if o.Offer != nil {
			m.Genesis = append(m.Genesis, ledger.Allocation{Account: o.ServerKey.Public().(ed25519.PublicKey), Amount: o.Offer.Stake*uint64(len(o.Models)) + 10*ledger.Unit})
		}
		params = ledger.Params{ProofDeadlineBlocks: ledger.DefaultParams.ProofDeadlineBlocks, Market: m}
	}
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(o.LedgerDir, "ledger.db"), ChainID: o.ChainID, Verifier: zkverify.New(), Disputes: heverify.New(), Ceremony: zkverify.NewCeremony(),
		SigningKey: key, BlockInterval: time.Second, Params: params})
	if err != nil {
		return nil, "", err
	}
	s.stops = append(s.stops, func() { n.Close() })
	lis, err := net.Listen("tcp", o.LedgerListen)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: listen on %s: %w", o.LedgerListen, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = query.Serve(lctx, n, lis, nil) }()
	s.stops = append(s.stops, func() { cancel(); <-done })
	say("veil: embedded ledger %s on %s, chain %s, node key %x\n"+
		"veil: (a client that checks this server should not trust a ledger node the server runs: use a replicated ledger)\n",
		filepath.Join(o.LedgerDir, "ledger.db"), lis.Addr(), o.ChainID, key.Public())
	return n, o.ChainID, nil
}
