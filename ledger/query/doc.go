// Package query serves a ledger.API over gRPC (ledgerv1.LedgerService) and
// over HTTP (JSON under /api/v1/ and a small server-rendered web page), and
// has the gRPC client that turns a remote node back into a ledger.API.
package query
