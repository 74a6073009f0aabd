package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
)

// Params are a chain's consensus parameters. They are fixed when the store
// is created (the genesis of an embedded node, or the app state of a
// CometBFT genesis) and every node of a chain must use the same ones:
// changing one changes which transactions are valid.
type Params struct {
	// ProofDeadlineBlocks is how long, in blocks, a server has to prove a
	// revealed request (and a client has to reveal a receipted one) before
	// a verdict may be recorded without a proof.
	ProofDeadlineBlocks uint64
	// Market holds the fees, genesis allocations and the rules of offers,
	// escrows and disputes (docs/market.md). The zero value is a chain
	// without fees and without stake or collateral minimums.
	Market MarketParams
	// Ceremony configures the trusted setup on the ledger (ceremony.go).
	Ceremony CeremonyParams
}

// MarketParams are the market's consensus parameters. Amounts are in the
// chain's smallest unit (integers: 10^6 units make one VEIL in the
// defaults); fractions are in basis points (1/10,000).
type MarketParams struct {
	// FeePerByte is charged on the size of every transaction, on top of its
	// base fee.
	FeePerByte uint64
	// Fees are the base fees per transaction type, keyed by the TxBody
	// field name ("register_model", "inference_receipt", ...); types not
	// listed pay DefaultFee.
	Fees       map[string]uint64
	DefaultFee uint64
	// Genesis are the balances at height 0.
	Genesis []Allocation
	// MinProviderStake is the bonded stake an offer needs to back requests.
	MinProviderStake uint64
	// MinUnbondingDelayBlocks bounds an offer's unbonding delay below.
	MinUnbondingDelayBlocks uint64
	// The collateral reserved from an offer's stake for each request is
	// max(MinCollateral, CollateralMultiple × price).
	CollateralMultiple uint64
	MinCollateral      uint64
	// MissSlashBps of the collateral is slashed when a revealed request has
	// no valid proof by its deadline (fraud proven slashes all of it).
	MissSlashBps uint32
	// SlashToClientBps of every slash goes to the client; the rest is
	// burned.
	SlashToClientBps uint32
	// ValidatorShareBps of every payment goes to the validators' pool.
	ValidatorShareBps uint32
	// TrainingRoyaltyBps of every payment for a model linked to a
	// federated training (after the validators' share) goes to its data
	// owners, split by their recorded shares (docs/market.md).
	TrainingRoyaltyBps uint32
	// DisputeWindowBlocks is how long after a proof its client may dispute
	// it; the provider is paid when it ends.
	DisputeWindowBlocks uint64
	// DisputeBond is what a failed dispute costs its client (paid to the
	// provider).
	DisputeBond uint64
}

// Allocation is a genesis balance.
type Allocation struct {
	Account ed25519.PublicKey
	Amount  uint64
}

// DefaultParams are the parameters of a ledger opened without any: about a
// minute at one block per second for proofs, and no fees (a development
// chain; `veil demo` and `veil ledger testnet` use MarketDefaults).
var DefaultParams = Params{ProofDeadlineBlocks: 60}

// Unit is one VEIL in the chain's smallest unit.
const Unit = 1_000_000

// MarketDefaults are the market parameters of `veil demo` and `veil ledger
// testnet` (docs/market.md explains the amounts): 1 unit per byte plus a
// base fee per type (a registration costs a whole VEIL: names are scarce),
// 10 VEIL of stake to serve, 1 VEIL of collateral per request at least,
// half of it slashed for a missed proof and all of it for proven fraud,
// half of every slash to the client, 5% of every payment to the pool, 30
// blocks to dispute, 0.5 VEIL of dispute bond.
func MarketDefaults() MarketParams {
	return MarketParams{
		FeePerByte: 1,
		Fees: map[string]uint64{
			"register_model": Unit, "provider_offer": 10_000, "dispute": 10_000,
			"inference_receipt": 1000, "challenge_reveal": 1000, "challenge_proof": 1000, "verdict": 1000, "transfer": 1000,
		},
		DefaultFee:              1000,
		MinProviderStake:        10 * Unit,
		MinUnbondingDelayBlocks: 100,
		CollateralMultiple:      20,
		MinCollateral:           Unit,
		MissSlashBps:            5000,
		SlashToClientBps:        5000,
		ValidatorShareBps:       500,
		TrainingRoyaltyBps:      2000,
		DisputeWindowBlocks:     30,
		DisputeBond:             Unit / 2,
	}
}

// MaxProofDeadlineBlocks bounds ProofDeadlineBlocks (so that height
// arithmetic can never overflow).
const MaxProofDeadlineBlocks = 1 << 32

// MaxSupply bounds the sum of the genesis allocations: every amount on the
// chain is at most this, so sums of a few amounts never overflow 64 bits
// (every addition is checked all the same).
const MaxSupply = 1 << 62

// maxFee bounds every fee parameter.
const maxFee = 1 << 40

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.ProofDeadlineBlocks == 0 || p.ProofDeadlineBlocks > MaxProofDeadlineBlocks {
		return fmt.Errorf("proof deadline of %d blocks: must be 1..%d", p.ProofDeadlineBlocks, uint64(MaxProofDeadlineBlocks))
	}
	if err := p.Ceremony.validate(); err != nil {
		return err
	}
	return p.Market.validate()
}

func (m MarketParams) validate() error {
	if m.FeePerByte > 1<<20 || m.DefaultFee > maxFee {
		return fmt.Errorf("fees: %d per byte (at most 2^20), default %d (at most 2^40)", m.FeePerByte, m.DefaultFee)
	}
	names := txTypeNames()
	for k, v := range m.Fees {
		if !slices.Contains(names, k) {
			return fmt.Errorf("fee for %q: not a transaction type (one of %v)", k, names)
		}
		if v > maxFee {
			return fmt.Errorf("fee for %s: %d, at most 2^40", k, v)
		}
	}
	var total uint64
	seen := map[string]bool{}
	for _, a := range m.Genesis {
		if len(a.Account) != ed25519.PublicKeySize {
			return fmt.Errorf("genesis allocation to a %d-byte account, want %d", len(a.Account), ed25519.PublicKeySize)
		}
		if seen[string(a.Account)] {
			return fmt.Errorf("genesis allocates to %x twice", a.Account[:8])
		}
		seen[string(a.Account)] = true
		var carry uint64
		if total, carry = bits.Add64(total, a.Amount, 0); carry != 0 || total > MaxSupply {
			return fmt.Errorf("genesis allocations exceed the maximum supply 2^62")
		}
	}
	for _, b := range []uint32{m.MissSlashBps, m.SlashToClientBps, m.ValidatorShareBps, m.TrainingRoyaltyBps} {
		if b > 10000 {
			return fmt.Errorf("a fraction of %d basis points exceeds 10000", b)
		}
	}
	for _, v := range []uint64{m.MinProviderStake, m.MinCollateral, m.DisputeBond} {
		if v > MaxSupply {
			return errors.New("a stake, collateral or bond parameter exceeds the maximum supply")
		}
	}
	if m.CollateralMultiple > 1<<20 {
		return fmt.Errorf("collateral multiple %d, at most 2^20", m.CollateralMultiple)
	}
	if m.DisputeWindowBlocks > MaxProofDeadlineBlocks || m.MinUnbondingDelayBlocks > MaxProofDeadlineBlocks {
		return fmt.Errorf("dispute window or unbonding delay beyond %d blocks", uint64(MaxProofDeadlineBlocks))
	}
	return nil
}

// txTypeNames are the field names of TxBody's transaction types.
func txTypeNames() []string {
	var out []string
	od := (&ledgerv1.TxBody{}).ProtoReflect().Descriptor().Oneofs().ByName("tx")
	for i := 0; i < od.Fields().Len(); i++ {
		out = append(out, string(od.Fields().Get(i).Name()))
	}
	return out
}

// txTypeName is the TxBody field name of a transaction's type.
func txTypeName(body *ledgerv1.TxBody) string {
	m := body.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("tx"))
	if fd == nil {
		return ""
	}
	return string(fd.Name())
}

// Proto returns the parameters as stored and served (fees and allocations
// sorted, so that equal parameters have one encoding).
func (p Params) Proto() *ledgerv1.ChainParams {
	m := p.Market
	out := &ledgerv1.ChainParams{
		ProofDeadlineBlocks: p.ProofDeadlineBlocks, FeePerByte: m.FeePerByte, DefaultFee: m.DefaultFee,
		MinProviderStake: m.MinProviderStake, MinUnbondingDelayBlocks: m.MinUnbondingDelayBlocks,
		CollateralMultiple: m.CollateralMultiple, MinCollateral: m.MinCollateral, MissSlashBps: m.MissSlashBps,
		SlashToClientBps: m.SlashToClientBps, ValidatorShareBps: m.ValidatorShareBps, TrainingRoyaltyBps: m.TrainingRoyaltyBps,
		DisputeWindowBlocks: m.DisputeWindowBlocks, DisputeBond: m.DisputeBond,
		CeremonyPhase1Domain: p.Ceremony.Phase1Domain, CeremonyMinContributions: p.Ceremony.MinContributions,
		CeremonyBeaconDelay: p.Ceremony.BeaconDelay, InsecureOwnerKeys: p.Ceremony.InsecureOwnerKeys,
		CeremonyPhase1CloseHeight: p.Ceremony.Phase1CloseHeight, CeremonyPhase2Window: p.Ceremony.Phase2Window,
		CeremonyPhase1Contributors: keyBytes(p.Ceremony.Phase1Contributors),
	}
	for k, v := range m.Fees {
		out.Fees = append(out.Fees, &ledgerv1.TxFee{Tx: k, Base: v})
	}
	sort.Slice(out.Fees, func(i, j int) bool { return out.Fees[i].Tx < out.Fees[j].Tx })
	for _, a := range m.Genesis {
		out.Genesis = append(out.Genesis, &ledgerv1.Allocation{Account: bytes.Clone(a.Account), Amount: a.Amount})
	}
	sort.Slice(out.Genesis, func(i, j int) bool { return bytes.Compare(out.Genesis[i].Account, out.Genesis[j].Account) < 0 })
	return out
}

// ParamsFromProto is the inverse of Proto.
func ParamsFromProto(m *ledgerv1.ChainParams) (Params, error) {
	if m == nil {
		return Params{}, errors.New("no chain parameters")
	}
	p := Params{ProofDeadlineBlocks: m.GetProofDeadlineBlocks(), Market: MarketParams{
		FeePerByte: m.GetFeePerByte(), DefaultFee: m.GetDefaultFee(), MinProviderStake: m.GetMinProviderStake(),
		MinUnbondingDelayBlocks: m.GetMinUnbondingDelayBlocks(), CollateralMultiple: m.GetCollateralMultiple(),
		MinCollateral: m.GetMinCollateral(), MissSlashBps: m.GetMissSlashBps(), SlashToClientBps: m.GetSlashToClientBps(),
		ValidatorShareBps: m.GetValidatorShareBps(), TrainingRoyaltyBps: m.GetTrainingRoyaltyBps(), DisputeWindowBlocks: m.GetDisputeWindowBlocks(), DisputeBond: m.GetDisputeBond(),
	}, Ceremony: CeremonyParams{
		Phase1Domain: m.GetCeremonyPhase1Domain(), MinContributions: m.GetCeremonyMinContributions(),
		BeaconDelay: m.GetCeremonyBeaconDelay(), InsecureOwnerKeys: m.GetInsecureOwnerKeys(),
		Phase1CloseHeight: m.GetCeremonyPhase1CloseHeight(), Phase2Window: m.GetCeremonyPhase2Window(),
		Phase1Contributors: keysOf(m.GetCeremonyPhase1Contributors()),
	}}
	for _, f := range m.GetFees() {
		if p.Market.Fees == nil {
			p.Market.Fees = map[string]uint64{}
		}
		if _, dup := p.Market.Fees[f.GetTx()]; dup {
			return Params{}, fmt.Errorf("fee for %q listed twice", f.GetTx())
		}
		p.Market.Fees[f.GetTx()] = f.GetBase()
	}
	for _, a := range m.GetGenesis() {
		p.Market.Genesis = append(p.Market.Genesis, Allocation{Account: bytes.Clone(a.GetAccount()), Amount: a.GetAmount()})
	}
	return p, p.Validate()
}

// IsZero reports whether no parameter is set (Options without Params).
func (p Params) IsZero() bool { return p.Equal(Params{}) }

// Equal reports whether two parameter sets are the same consensus rules.
func (p Params) Equal(q Params) bool { return proto.Equal(p.Proto(), q.Proto()) }

// GenesisSupply is the sum of the genesis allocations.
func (m MarketParams) GenesisSupply() uint64 {
	var t uint64
	for _, a := range m.Genesis {
		t += a.Amount // Validate bounds the sum by MaxSupply
	}
	return t
}

func keyBytes(ks []ed25519.PublicKey) [][]byte {
	var out [][]byte
	for _, k := range ks {
		out = append(out, []byte(k))
	}
	return out
}

func keysOf(bs [][]byte) []ed25519.PublicKey {
	var out []ed25519.PublicKey
	for _, b := range bs {
		out = append(out, ed25519.PublicKey(b))
	}
	return out
}
