package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/client"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/server"
	"github.com/veil-project/veil/zk"
)

// The demo's market: one chain with fees, three providers of the same
// committed model, each with an offer and stake. The honest one proves
// and is paid; the cheap one runs another model on one block of every
// request (a client that hits it with a challenge proves the fraud to every
// node); the idle one answers but never proves (every node refunds the
// client and slashes it at the deadline).

const (
	// demoPrice is each offer's price per image; demoStake each
	// provider's bonded stake.
	demoPrice = ledger.Unit / 10
	demoStake = 100 * ledger.Unit
	// cheatBlock is the block the cheap provider evaluates with another
	// model: undetected exactly when the client's real image is there.
	cheatBlock = 2
	// maxCheatRequests bounds the requests sent to the cheap provider
	// before the fraud is caught (each misses it with probability 1/4).
	maxCheatRequests = 6
)

// marketParams are the demo chain's: MarketDefaults, the demo's deadlines
// (blocks of 100 ms: 20 s to prove, about eight proofs' time on a loaded
// machine, and 5 s to dispute) and genesis balances for the client and
// the three providers.
func marketParams(client ed25519.PublicKey, providers ...ed25519.PublicKey) ledger.Params {
	m := ledger.MarketDefaults()
	m.DisputeWindowBlocks = 50
	m.MinUnbondingDelayBlocks = 20
	m.Genesis = []ledger.Allocation{{Account: client, Amount: 50 * ledger.Unit}}
	for _, p := range providers {
		m.Genesis = append(m.Genesis, ledger.Allocation{Account: p, Amount: 150 * ledger.Unit})
	}
	return ledger.Params{ProofDeadlineBlocks: 200, Market: m}
}

// provider is one inference server with its registration, offer, recorder
// and (unless idle) prover.
type provider struct {
	Name    string
	ModelID string
	key     ed25519.PrivateKey
	dep     *protocol.Deployment
	addr    string
	stop    func()
}

type providerOptions struct {
	name, modelID string
	evaluator     server.Evaluator // nil: the committed model
	prove         bool
}

func startProvider(ctx context.Context, node *embedded.Node, chain string, m *model.Model, salt zk.Salt, pk *zk.ProvingKey, ceremonyID string, key ed25519.PrivateKey,
	po providerOptions, log *slog.Logger) (*provider, error) {
	mm := *m
	mm.Name = po.modelID // the same weights and spec under another id: the same commitment and keys
	dep, err := protocol.Deploy(ctx, protocol.DeployOptions{Model: &mm, Salt: salt, Keys: pk, Ledger: node, ChainID: chain, Owner: key, Server: key, Log: log, CeremonyID: ceremonyID,
		Offer: &protocol.OfferOptions{Endpoint: "127.0.0.1 (" + po.name + ")", Price: demoPrice, Stake: demoStake, UnbondingDelay: 20}})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", po.name, err)
	}
	srv, err := server.New(server.Config{Models: []*model.Model{&mm}, Commitments: map[string][]byte{mm.Name: dep.Commitment[:]}, Recorder: dep.Recorder,
		Evaluator: po.evaluator, Logger: log})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() { served <- srv.Serve(sctx, lis, server.Options{Ready: func(string, string) { close(ready) }}) }()
	<-ready
	proving := make(chan struct{})
	if po.prove {
		go func() { defer close(proving); _ = dep.Prover.Run(sctx, 50*time.Millisecond) }()
	} else {
		close(proving)
	}
	p := &provider{Name: po.name, ModelID: mm.Name, key: key, dep: dep, addr: lis.Addr().String()}
	p.stop = func() { cancel(); <-served; <-proving; dep.Recorder.Wait() }
	return p, nil
}

// otherModel is the cheap provider's model: the committed one with its
// class scores rotated (class c gets what the committed model gives c+1).
func otherModel(m *model.Model) *model.Model {
	c := *m
	c.Layers = append([]model.Layer(nil), m.Layers...)
	last := &c.Layers[len(c.Layers)-1]
	w, b := make([]int32, len(last.W)), make([]int64, len(last.B))
	for r := 0; r < last.Out; r++ {
		from := (r + 1) % last.Out
		copy(w[r*last.In:(r+1)*last.In], last.W[from*last.In:(from+1)*last.In])
		b[r] = last.B[from]
	}
	last.W, last.B = w, b
	return &c
}

// cheatingEvaluator evaluates the committed model on every block but one.
type cheatingEvaluator struct{ net *he.Network }

func (e cheatingEvaluator) Evaluate(ctx context.Context, _ string, in *he.Ciphertext, keys *he.EvaluationKeys) (*he.Ciphertext, error) {
	return e.net.Evaluate(ctx, in, keys)
}

func newCheatingEvaluator(m *model.Model) (server.Evaluator, error) {
	params, err := he.NewParameters(he.DefaultParametersLiteral)
	if err != nil {
		return nil, err
	}
	lay, err := params.LayoutFor(model.ArchitectureOf(m))
	if err != nil {
		return nil, err
	}
	ms := make([]*model.Model, lay.Blocks)
	for b := range ms {
		ms[b] = m
	}
	ms[cheatBlock] = otherModel(m)
	net, err := params.CompilePerBlock(ms, he.DefaultEvaluationSettings)
	if err != nil {
		return nil, err
	}
	return cheatingEvaluator{net}, nil
}

// connectTo makes the client's side for one provider (its own session).
func connectTo(ctx context.Context, p *provider, reader *trust.Reader, dir string, key ed25519.PrivateKey, pool *dataset.Set, blocks, maxPerKey int) (*protocol.Client, *client.Conn, error) {
	conn, err := client.Dial(p.addr, client.Options{})
	if err != nil {
		return nil, nil, err
	}
	c, err := protocol.Connect(ctx, protocol.ConnectOptions{Conn: conn, Ledger: reader, ModelID: p.ModelID, DataDir: dir, Key: key, Pool: pool, Blocks: blocks,
		Pin: protocol.Pin{ServerKey: p.key.Public().(ed25519.PublicKey)}, MaxPrice: demoPrice, MaxRequestsPerKey: maxPerKey})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	c.Poll = 50 * time.Millisecond
	return c, conn, nil
}

// CheatAttempt is one request to the cheap provider.
type CheatAttempt struct {
	RequestKey string `json:"request_key"`
	RealBlock  int    `json:"real_block"`
	Caught     bool   `json:"caught"`
	Verdict    string `json:"verdict"`
	Detail     string `json:"detail"`
	Dispute    uint64 `json:"dispute_index,omitempty"`
	Escrow     string `json:"escrow"`
	Slashed    uint64 `json:"slashed"`
	ToClient   uint64 `json:"to_client"`
}

// Missed is the request the idle provider never proved.
type Missed struct {
	RequestKey   string `json:"request_key"`
	ReceiptIndex uint64 `json:"receipt_index"`
	RevealIndex  uint64 `json:"reveal_index"`
	Deadline     uint64 `json:"proof_deadline_height"`
	Escrow       string `json:"escrow"`
	SettleHeight uint64 `json:"settle_height"`
	Slashed      uint64 `json:"slashed"`
	ToClient     uint64 `json:"to_client"`
}

// Balance is an account, and a provider's bonded stake, before and after
// the demo.
type Balance struct {
	Who         string `json:"who"`
	Before      uint64 `json:"before"`
	After       uint64 `json:"after"`
	StakeBefore uint64 `json:"stake_before,omitempty"`
	StakeAfter  uint64 `json:"stake_after,omitempty"`
}

// MarketReport is the market's part of the demo.
type MarketReport struct {
	Price      uint64         `json:"price_per_image"`
	Stake      uint64         `json:"stake"`
	Collateral uint64         `json:"collateral_per_request"`
	Cheat      []CheatAttempt `json:"cheating_provider"`
	Missed     *Missed        `json:"idle_provider"`
	Balances   []Balance      `json:"balances"`
	Pool       uint64         `json:"pool"`
	Burned     uint64         `json:"burned"`
	SupplyOK   bool           `json:"supply_conserved"`
}

// cheat sends requests to the cheap provider until one of them puts a
// challenge in the cheated block: the client's comparison notices, its
// dispute proves the fraud to every node.
func cheat(ctx context.Context, c *protocol.Client, node *embedded.Node, test *dataset.Set, say func(string, ...any)) ([]CheatAttempt, error) {
	var out []CheatAttempt
	for i := 0; i < maxCheatRequests; i++ {
		img, _, _ := test.At(100 + i)
		req, err := c.Classify(ctx, img)
		if err != nil {
			return out, fmt.Errorf("cheating provider: %w", err)
		}
		if _, _, err := c.Reveal(ctx, req); err != nil {
			return out, err
		}
		o, err := c.Settle(ctx, req, time.Minute)
		if err != nil {
			return out, err
		}
		a := CheatAttempt{RequestKey: hex.EncodeToString(req.Key[:]), RealBlock: req.RealBlock, Verdict: o.Reason.String(), Detail: o.Detail}
		if o.Accept {
			say("  request %d: the real image sat in block %d, the cheated one: nothing to see (probability 1/4), accepted and paid\n", i+1, req.RealBlock)
			e, _ := c.WaitEscrow(ctx, req, 10*time.Second)
			a.Escrow = e.GetStatus().String()
			out = append(out, a)
			continue
		}
		res, err := c.Dispute(ctx, req, o)
		if err != nil {
			return out, fmt.Errorf("dispute: %w", err)
		}
		e, err := c.WaitEscrow(ctx, req, 10*time.Second)
		if err != nil {
			return out, err
		}
		a.Caught, a.Dispute, a.Escrow, a.Slashed, a.ToClient = true, res.Index, e.GetStatus().String(), e.GetSlashed(), e.GetToClient()
		say("  request %d: challenge in block %d: %s\n", i+1, cheatBlock, o.Detail)
		say("    dispute #%d (seed, input and output ciphertexts, %s of evidence) checked by every node: fraud proven;\n    escrow refunded, %s VEIL of stake slashed, %s VEIL of it to the client\n",
			res.Index, kb(req.Result.InputBytes+req.Result.OutputBytes), veil(e.GetSlashed()), veil(e.GetToClient()))
		out = append(out, a)
		return out, nil
	}
	return out, errors.New("the cheating provider was not caught in 6 requests (probability 4^-6)")
}

// waitMissed waits for the idle provider's request to be settled at its
// deadline.
func waitMissed(ctx context.Context, c *protocol.Client, req *protocol.Request, receipt, reveal uint64) (*Missed, error) {
	e, err := c.WaitEscrow(ctx, req, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("idle provider: %w", err)
	}
	rec, err := c.Ledger.API.Request(ctx, req.Key[:])
	if err != nil {
		return nil, err
	}
	return &Missed{RequestKey: hex.EncodeToString(req.Key[:]), ReceiptIndex: receipt, RevealIndex: reveal, Deadline: rec.GetProofDeadline(),
		Escrow: e.GetStatus().String(), SettleHeight: e.GetSettleHeight(), Slashed: e.GetSlashed(), ToClient: e.GetToClient()}, nil
}

func veil(v uint64) string { return fmt.Sprintf("%d.%06d", v/ledger.Unit, v%ledger.Unit) }

func kb(n int) string { return fmt.Sprintf("%.0f KB", float64(n)/1000) }

func change(before, after uint64) string {
	if after < before {
		return "-" + veil(before-after)
	}
	return "+" + veil(after-before)
}

// PrintBalances prints the balances table.
func PrintBalances(w io.Writer, m *MarketReport) {
	const row = "%-16s %11s %11s %10s   %11s %11s %10s\n"
	fmt.Fprintf(w, "\n"+row, "VEIL", "balance", "after", "change", "stake", "after", "change")
	for _, b := range m.Balances {
		if b.StakeBefore == 0 && b.StakeAfter == 0 {
			fmt.Fprintf(w, row, b.Who, veil(b.Before), veil(b.After), change(b.Before, b.After), "", "", "")
			continue
		}
		fmt.Fprintf(w, row, b.Who, veil(b.Before), veil(b.After), change(b.Before, b.After), veil(b.StakeBefore), veil(b.StakeAfter), change(b.StakeBefore, b.StakeAfter))
	}
	fmt.Fprintf(w, "pool (every fee, such as 1 unit per byte of uploads and 1 VEIL per registration, and 5%% of payments): %s; burned (slashes not paid to clients): %s\n", veil(m.Pool), veil(m.Burned))
	fmt.Fprintf(w, "supply conserved: %v (every unit is in a balance, a stake, an escrow, the pool or burned)\n", m.SupplyOK)
}

func escrowOf(ctx context.Context, api ledger.API, key []byte) *ledgerv1.EscrowRecord {
	if m, ok := api.(ledger.MarketAPI); ok {
		e, _ := m.Escrow(ctx, key)
		return e
	}
	return nil
}
