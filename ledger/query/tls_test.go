package query_test

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	ledgerv1 "github.com/veil-project/veil/api/veil/ledger/v1"
	"github.com/veil-project/veil/internal/testcerts"
	"github.com/veil-project/veil/ledger/embedded"
	"github.com/veil-project/veil/ledger/ledgertest"
	"github.com/veil-project/veil/ledger/query"
)

// A client given the ledger's CA talks TLS to it (and a plaintext client
// cannot): reveals and verdicts do not travel in the clear when the user
// asked for TLS.
func TestDialWithTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := testcerts.SelfSigned(t, dir)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := embedded.Open(embedded.Config{Path: filepath.Join(dir, "l.db"), ChainID: chain, Verifier: ledgertest.FakeVerifier{}, SigningKey: ledgertest.Key("node")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	ledgerv1.RegisterLedgerServiceServer(gs, &query.GRPCServer{API: n})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := query.DialWith(lis.Addr().String(), query.DialOptions{TLSCA: certPath, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ci, err := c.ChainInfo(ctx)
	if err != nil || ci.GetChainId() != chain {
		t.Fatalf("over TLS: %v %v", ci, err)
	}
	plain, err := query.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := plain.ChainInfo(ctx2); err == nil {
		t.Fatal("a plaintext client talked to a TLS ledger node")
	}
	if _, err := query.DialWith(lis.Addr().String(), query.DialOptions{TLSCA: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
