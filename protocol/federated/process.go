package federated

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	federatedv1 "github.com/veil-project/veil/api/veil/federated/v1"
	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
)

// The roles as separate processes (`veil federated aggregate` and `veil
// federated party`), each talking to a ledger node over gRPC.

// StandardSplit cuts MNIST's training set as `veil federated` does: the
// last validationSize images are the public validation set, the rest is
// split among the owners.
func StandardSplit(train *dataset.Set, validationSize int, split SplitConfig) ([]*dataset.Set, *dataset.Set, error) {
	if validationSize <= 0 || train.Len() <= validationSize {
		return nil, nil, errors.New("split: the training set must be larger than the validation set")
	}
	n := train.Len() - validationSize
	pool := &dataset.Set{Images: train.Images[:n], Labels: train.Labels[:n]}
	shards, err := Split(pool, split)
	if err != nil {
		return nil, nil, err
	}
	return shards, &dataset.Set{Images: train.Images[n:], Labels: train.Labels[n:]}, nil
}

// ServeCoordinator serves the coordinator's gRPC service on lis, records
// the training's start and runs it to the end; it writes the final model
// to modelPath and its commitment salt (0600) to saltPath(model file).
func ServeCoordinator(ctx context.Context, cfg CoordinatorConfig, lis net.Listener, modelPath string, saltPath func(*model.File) (string, error)) (*CoordinatorReport, error) {
	c, err := NewCoordinator(cfg)
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	federatedv1.RegisterAggregatorServer(srv, c)
	go srv.Serve(lis)
	defer srv.Stop()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	res, err := c.Run(ctx)
	if err != nil {
		return nil, err
	}
	rep := &CoordinatorReport{TrainingID: cfg.Config.TrainingID, Rounds: res.Rounds, Commitment: res.Commitment.String(), ModelPath: modelPath}
	mf := &model.File{Model: res.Fixed}
	if err := mf.Save(modelPath); err != nil {
		return nil, err
	}
	if saltPath != nil {
		if rep.SaltPath, err = saltPath(mf); err != nil {
			return nil, err
		}
		if err := c.Salt().Save(rep.SaltPath); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// RunRemoteOwner dials the coordinator at addr and takes part in the
// training (cfg.Coordinator is set here).
func RunRemoteOwner(ctx context.Context, cfg OwnerConfig, addr string) (*Owner, error) {
	traffic := &Traffic{}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(traffic))
	if err != nil {
		return nil, fmt.Errorf("connect to coordinator %s: %w", addr, err)
	}
	defer conn.Close()
	cfg.Coordinator = federatedv1.NewAggregatorClient(conn)
	o, err := NewOwner(cfg, traffic)
	if err != nil {
		return nil, err
	}
	if _, err := o.Run(ctx); err != nil {
		return o, err
	}
	return o, nil
}
