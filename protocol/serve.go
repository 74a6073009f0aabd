package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/server"
)

// ServeOptions configure an inference server (`veil serve`) and, with
// Service, the verifiable deployment behind it.
type ServeOptions struct {
	// ModelPaths are the model files to serve (none: the default model).
	ModelPaths []string
	// Addr is the gRPC listen address.
	Addr string
	// Config is the server's; Models are ModelPaths', and general networks
	// choose their parameters from MNIST training images unless
	// ProbeSource is set.
	Config server.Config
	// Serve has the TLS files and the metrics address; Ready defaults to a
	// line on Log.
	Serve server.Options
	// Service, when not nil, commits and registers the models on a ledger
	// and records receipts (StartService); its Models and Log are Config's.
	Service *ServiceOptions
	// Log gets where the server serves.
	Log io.Writer
}

// LoadModels reads the model files at paths, or the committed default
// model when there are none.
func LoadModels(paths []string) ([]*model.Model, error) {
	var models []*model.Model
	if len(paths) == 0 {
		f, err := model.Default()
		if err != nil {
			return nil, err
		}
		models = append(models, f.Model)
	}
	for _, p := range paths {
		f, err := model.Load(p)
		if err != nil {
			return nil, err
		}
		models = append(models, f.Model)
	}
	return models, nil
}

// Serve runs the server until ctx ends.
func Serve(ctx context.Context, o ServeOptions) error {
	cfg := o.Config
	var err error
	if cfg.Models, err = LoadModels(o.ModelPaths); err != nil {
		return err
	}
	if cfg.ProbeSource == nil {
		// General networks choose their parameters from MNIST training
		// images, loaded only if such a model is served.
		cfg.ProbeSource = func() ([][]uint8, error) { return dataset.TrainingSample(200) }
	}
	if o.Service != nil {
		so := *o.Service
		so.Models, so.Log = cfg.Models, cfg.Logger
		svc, err := StartService(ctx, so)
		if err != nil {
			return err
		}
		defer svc.Stop()
		cfg.Recorder, cfg.Commitments = svc.Recorder, svc.Commitments
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	if o.Serve.Ready == nil && o.Log != nil {
		o.Serve.Ready = func(ga, ha string) {
			fmt.Fprintf(o.Log, "veil: serving gRPC on %s", ga)
			if ha != "" {
				fmt.Fprintf(o.Log, ", metrics on http://%s/metrics", ha)
			}
			fmt.Fprintln(o.Log)
		}
	}
	return srv.Serve(ctx, lis, o.Serve)
}

// ParseOffer is the market offer of a server at endpoint: price per image
// and stake in VEIL, the market's shortest unbonding delay.
func ParseOffer(endpoint, price, stake string) (*OfferOptions, error) {
	p, err1 := ledger.ParseAmount(price)
	st, err2 := ledger.ParseAmount(stake)
	if err1 != nil || err2 != nil {
		return nil, errors.Join(err1, err2)
	}
	return &OfferOptions{Endpoint: endpoint, Price: p, Stake: st, UnbondingDelay: ledger.MarketDefaults().MinUnbondingDelayBlocks}, nil
}
