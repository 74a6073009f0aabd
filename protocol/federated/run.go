package federated

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	federatedv1 "github.com/veil-project/veil/api/veil/federated/v1"
	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/he"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/zk"
)

// Session is one training with every role in this process: a coordinator
// serving gRPC on a loopback port and N owners that dial it, all on one
// ledger. Run and the leave-one-out trainings use it.
type Session struct {
	Config      Config
	Ledger      ledger.TrainingAPI
	ChainID     string
	Coordinator ed25519.PrivateKey
	OwnerKeys   []ed25519.PrivateKey
	Shards      []*dataset.Set
	Validation  *dataset.Set
	HE          he.AggregationParameters
	ModelName   string
	Initial     *model.Float
	Faults      map[int]Faults
	Evaluate    func(*model.Float) float64
	OnRound     func(RoundReport)
	Log         *slog.Logger
	// For tests of a lying coordinator: CoordinatorLedger replaces the
	// ledger the coordinator writes to, Service the gRPC service the owners
	// talk to.
	CoordinatorLedger ledger.TrainingAPI
	Service           func(*Coordinator) federatedv1.AggregatorServer
}

// RoundReport is a round seen by the coordinator and every owner.
type RoundReport struct {
	RoundStats
	Owners []OwnerRoundStats `json:"owners"`
	// MaxOwnerHESeconds is the slowest owner's HE work in the round;
	// HEOverheadSeconds adds the coordinator's (the round's HE overhead on
	// its critical path: owners work in parallel).
	MaxOwnerHESeconds float64 `json:"max_owner_he_seconds"`
	HEOverheadSeconds float64 `json:"he_overhead_seconds"`
}

// SessionResult is a finished training.
type SessionResult struct {
	*Result
	Salt    zk.Salt
	Rounds  []RoundReport
	Owners  []*Owner
	Elapsed time.Duration
	// OwnerErrors holds the error of each owner that did not finish (one
	// that stopped by a fault, or one that refused something), nil for the
	// others. The training goes on without them while min_updates and t
	// owners remain.
	OwnerErrors []error
}

// Run trains with every role in this process and returns when the
// coordinator has finished (or failed).
func (s *Session) Run(ctx context.Context) (*SessionResult, error) {
	start := time.Now()
	ownerPubs := make([]ed25519.PublicKey, len(s.OwnerKeys))
	for i, k := range s.OwnerKeys {
		ownerPubs[i] = k.Public().(ed25519.PublicKey)
	}
	if len(s.Shards) != len(s.OwnerKeys) || len(s.OwnerKeys) != s.Config.Owners {
		return nil, fmt.Errorf("session: %d shards and %d owner keys for %d owners", len(s.Shards), len(s.OwnerKeys), s.Config.Owners)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var owners []*Owner
	report := func(st RoundStats, wait bool) RoundReport {
		rep := RoundReport{RoundStats: st}
		deadline := time.Now().Add(2 * time.Second)
		for _, o := range owners {
			os, ok := o.roundStats(st.Round)
			for wait && !ok && !o.stopped() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				os, ok = o.roundStats(st.Round)
			}
			if ok {
				rep.Owners = append(rep.Owners, os)
				rep.MaxOwnerHESeconds = max(rep.MaxOwnerHESeconds, os.HESeconds)
			}
		}
		rep.HEOverheadSeconds = rep.MaxOwnerHESeconds + st.HESeconds
		return rep
	}
	cl := s.Ledger
	if s.CoordinatorLedger != nil {
		cl = s.CoordinatorLedger
	}
	coord, err := NewCoordinator(CoordinatorConfig{
		Config: s.Config, Ledger: cl, ChainID: s.ChainID, Key: s.Coordinator, OwnerKeys: ownerPubs,
		Validation: s.Validation, Initial: s.Initial, HE: s.HE, ModelName: s.ModelName, Log: log, Evaluate: s.Evaluate,
		OnRound: func(st RoundStats) {
			if s.OnRound != nil {
				s.OnRound(report(st, true))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	var svc federatedv1.AggregatorServer = coord
	if s.Service != nil {
		svc = s.Service(coord)
	}
	federatedv1.RegisterAggregatorServer(srv, svc)
	go srv.Serve(lis)
	defer srv.Stop()
	if err := coord.Start(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	ownerErrs := make([]error, len(s.OwnerKeys))
	for i, k := range s.OwnerKeys {
		traffic := &Traffic{}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(traffic))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		o, err := NewOwner(OwnerConfig{
			Index: i, Key: k, TrainingID: s.Config.TrainingID, Shard: s.Shards[i], Ledger: s.Ledger, ChainID: s.ChainID,
			Coordinator: federatedv1.NewAggregatorClient(conn), HE: s.HE, Validation: s.Validation, Log: log, Faults: s.Faults[i],
		}, traffic)
		if err != nil {
			return nil, err
		}
		owners = append(owners, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := o.Run(ctx); err != nil {
				ownerErrs[i] = err
				if !errors.Is(err, errStopped) {
					log.Warn("owner failed", "owner", i, "err", err)
				}
			}
		}()
	}
	res, err := coord.Run(ctx)
	if err != nil {
		cancel()
		wg.Wait()
		return &SessionResult{OwnerErrors: ownerErrs, Owners: owners}, fmt.Errorf("training %s: %w", s.Config.TrainingID, err)
	}
	wg.Wait()
	out := &SessionResult{Result: res, Salt: coord.Salt(), Owners: owners, Elapsed: time.Since(start), OwnerErrors: ownerErrs}
	for _, st := range res.Rounds {
		out.Rounds = append(out.Rounds, report(st, false))
	}
	return out, nil
}

// keysFor derives deterministic-looking but fresh keys for a session.
func newKeys(n int) ([]ed25519.PrivateKey, error) {
	out := make([]ed25519.PrivateKey, n)
	for i := range out {
		_, k, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// linkModel links a registered model to its training with the owners'
// shares (LinkModelTraining, signed by the model's owner key).
func linkModel(ctx context.Context, api ledger.API, chainID string, key ed25519.PrivateKey, modelID, trainingID string, shares []uint32, method string, loo []uint32, full uint32) error {
	if _, err := submit(ctx, api, chainID, key, &ledgerv1.TxBody{Tx: &ledgerv1.TxBody_LinkModelTraining{LinkModelTraining: &ledgerv1.LinkModelTraining{
		ModelId: modelID, TrainingId: trainingID, ShareBp: shares, ShareMethod: method, LooAccuracyBp: loo, FullAccuracyBp: full,
	}}}); err != nil {
		return fmt.Errorf("link model to training: %w", err)
	}
	return nil
}
