package query

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/ledger"
)

// Federated training queries (ledger/training.go). A served API that does
// not answer them (a ledger.API that is not a ledger.TrainingAPI) gets
// UNIMPLEMENTED.

var _ ledger.TrainingAPI = (*Client)(nil)

func (s *GRPCServer) trainingAPI() (ledger.TrainingAPI, error) {
	t, ok := s.API.(ledger.TrainingAPI)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this ledger does not serve training records")
	}
	return t, nil
}

func (s *GRPCServer) GetTraining(ctx context.Context, r *ledgerv1.GetTrainingRequest) (*ledgerv1.TrainingRecord, error) {
	t, err := s.trainingAPI()
	if err != nil {
		return nil, err
	}
	rec, err := t.Training(ctx, r.TrainingId)
	return rec, grpcErr(err)
}

func (s *GRPCServer) GetTrainingRound(ctx context.Context, r *ledgerv1.GetTrainingRoundRequest) (*ledgerv1.TrainingRoundRecord, error) {
	t, err := s.trainingAPI()
	if err != nil {
		return nil, err
	}
	rec, err := t.TrainingRound(ctx, r.TrainingId, r.Round)
	return rec, grpcErr(err)
}

func (s *GRPCServer) GetModelTraining(ctx context.Context, r *ledgerv1.GetModelTrainingRequest) (*ledgerv1.ModelTrainingRecord, error) {
	t, err := s.trainingAPI()
	if err != nil {
		return nil, err
	}
	rec, err := t.ModelTraining(ctx, r.ModelId)
	return rec, grpcErr(err)
}

// Training implements ledger.TrainingAPI.
func (c *Client) Training(ctx context.Context, id string) (*ledgerv1.TrainingRecord, error) {
	r, err := c.rpc.GetTraining(ctx, &ledgerv1.GetTrainingRequest{TrainingId: id})
	return r, clientErr("training "+id, err)
}

// TrainingRound implements ledger.TrainingAPI.
func (c *Client) TrainingRound(ctx context.Context, id string, round uint32) (*ledgerv1.TrainingRoundRecord, error) {
	r, err := c.rpc.GetTrainingRound(ctx, &ledgerv1.GetTrainingRoundRequest{TrainingId: id, Round: round})
	return r, clientErr(fmt.Sprintf("training %s round %d", id, round), err)
}

// ModelTraining implements ledger.TrainingAPI.
func (c *Client) ModelTraining(ctx context.Context, modelID string) (*ledgerv1.ModelTrainingRecord, error) {
	r, err := c.rpc.GetModelTraining(ctx, &ledgerv1.GetModelTrainingRequest{ModelId: modelID})
	return r, clientErr("training of model "+modelID, err)
}
