package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veil-project/veil/ledger"
	"github.com/veil-project/veil/ledger/cometbft"
	"github.com/veil-project/veil/ledger/query"
	"github.com/veil-project/veil/ledger/trust"
	"github.com/veil-project/veil/protocol"
	"github.com/veil-project/veil/zk/mpcsetup"
)

// TestTestnetValidatorsRunPhase1 starts a 3-validator CometBFT testnet
// written the way `veil ledger testnet --phase1` writes it (a funded
// contributor key per validator, phase 1 closing only after every
// validator contributed, fees on) and checks that the validators, on their
// own, contribute in turn, close and seal phase 1; that every node holds
// the same sealed record; that each validator's contribution is in the
// transcript by the log entries a quorum vouches for, read through another
// validator; and that the sealed SRS derives from the last accumulator and
// the beacon.
func TestTestnetValidatorsRunPhase1(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-validator CometBFT testnet")
	}
	const nodes, domain = 3, 1 << 5
	dir := t.TempDir()
	ports := freePorts(t, 4*nodes)
	var pp [][4]int
	var homes []string
	for i := 0; i < nodes; i++ {
		pp = append(pp, [4]int{ports[4*i], ports[4*i+1], ports[4*i+2], ports[4*i+3]})
		homes = append(homes, cometbft.NodeDir(dir, i))
	}
	params := ledger.Params{ProofDeadlineBlocks: 100, Market: ledger.MarketDefaults()}
	if err := protocol.OpenTestnetPhase1(&params, domain, homes); err != nil {
		t.Fatal(err)
	}
	if len(params.Market.Genesis) != nodes || params.Ceremony.MinContributions != nodes || len(params.Ceremony.Phase1Contributors) != nodes {
		t.Fatalf("phase 1 genesis: %d allocations, %d contributions needed; want %d each", len(params.Market.Genesis), params.Ceremony.MinContributions, nodes)
	}
	var keys []ed25519.PublicKey
	for _, h := range homes {
		st, err := os.Stat(protocol.ContributorKeyPath(h))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("contributor key of %s: %v %v", h, st, err)
		}
		k, _, err := ledger.LoadOrCreateNodeKey(protocol.ContributorKeyPath(h))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.Public().(ed25519.PublicKey))
	}
	const chain = "veil-e2e-phase1"
	if err := cometbft.WriteTestnet(cometbft.TestnetOptions{Dir: dir, Nodes: nodes, ChainID: chain, Ports: pp, TimeoutCommit: 300 * time.Millisecond, Params: params}); err != nil {
		t.Fatal(err)
	}
	startValidators(t, dir, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var clients []*query.Client
	for i := 0; i < nodes; i++ {
		c, err := query.Dial(fmt.Sprintf("127.0.0.1:%d", pp[i][2]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	for {
		rec, err := clients[0].Ceremony(ctx, ledger.Phase1ID)
		if err == nil && rec.Sealed {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("phase 1 never sealed: %v %v", rec, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sealed, err := clients[0].Ceremony(ctx, ledger.Phase1ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed.Contributions) != nodes {
		t.Fatalf("phase 1 sealed with %d contributions, want one per validator (%d)", len(sealed.Contributions), nodes)
	}
	anchor, err := trust.AnchorFromGenesis(filepath.Join(homes[0], "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		var step = -1
		for j, c := range sealed.Contributions {
			if bytes.Equal(c.Contributor, k) {
				step = j
			}
		}
		if step < 0 {
			t.Fatalf("validator %d's contributor key is not among the contributors", i)
		}
		// Read through another validator, trusting only a quorum's heads;
		// wait until that node has the seal too.
		other := clients[(i+1)%nodes]
		for {
			rec, err := other.Ceremony(ctx, ledger.Phase1ID)
			if err == nil && rec.Sealed {
				if !bytes.Equal(rec.LastHash, sealed.LastHash) || !bytes.Equal(rec.Beacon, sealed.Beacon) {
					t.Fatalf("validator %d's node holds another sealed phase 1", (i+1)%nodes)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("validator %d's node never saw the seal", (i+1)%nodes)
			}
			time.Sleep(300 * time.Millisecond)
		}
		r := &trust.Reader{API: other, Anchor: anchor}
		var proof *protocol.TranscriptProof
		for {
			head, err := r.Head(ctx)
			if err == nil {
				proof, err = protocol.VerifyInTranscript(ctx, r, head, ledger.Phase1ID, sealed.Contributions[step].Hash)
			}
			if err == nil && proof.Sealed {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("validator %d's contribution in the transcript: %v", i, err)
			}
			time.Sleep(300 * time.Millisecond) // the quorum head lags the node by a block
		}
		if !bytes.Equal(proof.Contributor, k) || proof.Position != step+1 {
			t.Fatalf("validator %d: transcript proof %+v", i, proof)
		}
	}
	// The seal: the last accumulator, with the recorded beacon, gives an SRS.
	last, err := protocol.FetchBlob(ctx, clients[2], sealed.Contributions[nodes-1].Chunks)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := mpcsetup.DecodePhase1(last, sealed.Domain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mpcsetup.SealPhase1To(ctx, p1, sealed.Beacon, domain); err != nil {
		t.Fatalf("seal the transcript's last accumulator: %v", err)
	}
}
