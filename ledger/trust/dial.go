package trust

import (
	"context"
	"errors"
	"fmt"

	"github.com/veil-project/veil/ledger/query"
)

// DialOptions say which ledger node to read and what to pin about it:
// exactly one of NodeKey (a single node's checkpoint key) and GenesisFile
// (a replicated chain's genesis, whose validators sign heads).
type DialOptions struct {
	Addr        string // the node's gRPC address
	TLSCA       string // the node's CA (PEM file); empty: plaintext
	NodeKey     []byte
	GenesisFile string
	// ChainID, when set, must be the chain's; when empty it is the
	// genesis file's, or the node's own (a lie is caught when the node's
	// heads do not verify for that chain under the pinned key).
	ChainID string
}

// Dial connects to a ledger node and returns a Reader pinned as the options
// say, and the connection to close.
func Dial(ctx context.Context, o DialOptions) (*Reader, *query.Client, error) {
	if o.Addr == "" {
		return nil, nil, errors.New("no ledger node address")
	}
	if (len(o.NodeKey) == 0) == (o.GenesisFile == "") {
		return nil, nil, errors.New("pin a node key or a genesis file (exactly one)")
	}
	a := Anchor{ChainID: o.ChainID, NodeKey: o.NodeKey}
	if o.GenesisFile != "" {
		g, err := AnchorFromGenesis(o.GenesisFile)
		if err != nil {
			return nil, nil, err
		}
		if o.ChainID != "" && o.ChainID != g.ChainID {
			return nil, nil, fmt.Errorf("chain id %q, the genesis file is for %q", o.ChainID, g.ChainID)
		}
		a = g
	}
	c, err := query.DialWith(o.Addr, query.DialOptions{TLSCA: o.TLSCA})
	if err != nil {
		return nil, nil, err
	}
	if a.ChainID == "" {
		ci, err := c.ChainInfo(ctx)
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		a.ChainID = ci.GetChainId()
	}
	if err := a.Validate(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return &Reader{API: c, Anchor: a}, c, nil
}
