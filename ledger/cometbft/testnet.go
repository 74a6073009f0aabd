package cometbft

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtcrypto "github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	cmttime "github.com/cometbft/cometbft/types/time"
	"github.com/veil-project/veil/ledger"
)

// TestnetOptions describe a localhost testnet.
type TestnetOptions struct {
	Dir     string
	Nodes   int
	ChainID string
	Host    string // default 127.0.0.1
	// BasePort: node i uses BasePort+10*i (p2p), +1 (CometBFT RPC), +2
	// (ledger gRPC) and +3 (ledger HTTP). Default 26600.
	BasePort int
	// Ports, if set, overrides BasePort with explicit ports per node
	// (p2p, rpc, grpc, http), e.g. free ports picked by a test.
	Ports [][4]int
	// TimeoutCommit is the pause after each block (CometBFT default 1 s,
	// which gives the ~1 s block time).
	TimeoutCommit time.Duration
	// Params are the chain's consensus parameters, written into the
	// genesis app state (zero: ledger.DefaultParams).
	Params ledger.Params
}

// NodeDir is the home directory of node i.
func NodeDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i)) }

// WriteTestnet writes a genesis shared by all nodes, one validator key,
// node key (both 0600) and config per node, and the peers list.
func WriteTestnet(o TestnetOptions) error {
	if o.Nodes < 1 {
		return fmt.Errorf("testnet needs at least one node")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.BasePort == 0 {
		o.BasePort = 26600
	}
	if o.ChainID == "" {
		o.ChainID = "veil-testnet"
	}
	if o.TimeoutCommit == 0 {
		o.TimeoutCommit = time.Second
	}
	port := func(i, k int) int {
		if o.Ports != nil {
			return o.Ports[i][k]
		}
		return o.BasePort + 10*i + k
	}
	if _, err := os.Stat(filepath.Join(NodeDir(o.Dir, 0), "config", "genesis.json")); err == nil {
		return fmt.Errorf("%s already holds a testnet; remove it first", o.Dir)
	}
	var vals []types.GenesisValidator
	var peers []string
	confs := make([]*cfg.Config, o.Nodes)
	for i := 0; i < o.Nodes; i++ {
		home := NodeDir(o.Dir, i)
		conf := cfg.DefaultConfig()
		conf.SetRoot(home)
		for _, d := range []string{"config", "data"} {
			if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
				return fmt.Errorf("create node directory: %w", err)
			}
		}
		pv, err := privval.GenFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile(), func() (cmtcrypto.PrivKey, error) { return ed25519.GenPrivKey(), nil })
		if err != nil {
			return fmt.Errorf("generate validator key: %w", err)
		}
		pv.Save()
		nk, err := p2p.LoadOrGenNodeKey(conf.NodeKeyFile())
		if err != nil {
			return fmt.Errorf("generate node key: %w", err)
		}
		for _, f := range []string{conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile(), conf.NodeKeyFile()} {
			if err := os.Chmod(f, 0o600); err != nil {
				return err
			}
		}
		pub, err := pv.GetPubKey()
		if err != nil {
			return err
		}
		vals = append(vals, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: fmt.Sprintf("node%d", i)})
		peers = append(peers, fmt.Sprintf("%s@%s", nk.ID(), net.JoinHostPort(o.Host, strconv.Itoa(port(i, 0)))))
		confs[i] = conf
	}
	if o.Params.IsZero() {
		o.Params = ledger.DefaultParams
	}
	appState, err := genesisAppState(o.Params)
	if err != nil {
		return err
	}
	gen := &types.GenesisDoc{
		ChainID: o.ChainID, GenesisTime: cmttime.Now(), ConsensusParams: types.DefaultConsensusParams(),
		InitialHeight: 1, Validators: vals, AppState: appState,
	}
	for i, conf := range confs {
		home := NodeDir(o.Dir, i)
		if err := gen.SaveAs(conf.GenesisFile()); err != nil {
			return fmt.Errorf("write genesis: %w", err)
		}
		conf.Moniker = fmt.Sprintf("veil-node%d", i)
		conf.P2P.ListenAddress = "tcp://" + net.JoinHostPort(o.Host, strconv.Itoa(port(i, 0)))
		conf.RPC.ListenAddress = "tcp://" + net.JoinHostPort(o.Host, strconv.Itoa(port(i, 1)))
		var others []string
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		conf.P2P.PersistentPeers = strings.Join(others, ",")
		conf.P2P.AddrBookStrict = false
		conf.P2P.AllowDuplicateIP = true
		conf.P2P.PexReactor = false
		conf.Consensus.TimeoutCommit = o.TimeoutCommit
		conf.Instrumentation.Prometheus = false
		cfg.WriteConfigFile(filepath.Join(home, "config", "config.toml"), conf)
		lc, _ := json.MarshalIndent(LedgerConfig{
			GRPCAddr: net.JoinHostPort(o.Host, strconv.Itoa(port(i, 2))),
			HTTPAddr: net.JoinHostPort(o.Host, strconv.Itoa(port(i, 3))),
		}, "", "  ")
		if err := os.WriteFile(filepath.Join(home, "config", LedgerConfigFile), append(lc, '\n'), 0o600); err != nil {
			return fmt.Errorf("write ledger settings: %w", err)
		}
	}
	return nil
}

// FastConsensus shortens CometBFT's timeouts for testnets on loopback,
// where every message arrives in microseconds: blocks every ~0.3 s.
func FastConsensus(c *cfg.Config) {
	c.Consensus.TimeoutCommit = 300 * time.Millisecond
	c.Consensus.TimeoutPropose = 1500 * time.Millisecond
	c.Consensus.TimeoutPrevote = 300 * time.Millisecond
	c.Consensus.TimeoutPrecommit = 300 * time.Millisecond
	c.P2P.DialTimeout = time.Second
	c.P2P.HandshakeTimeout = 3 * time.Second
}
