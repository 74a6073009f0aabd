// Package stats summarises measurements the way every Veil report does:
// durations in milliseconds, nearest-rank quantiles, and summaries (median,
// 95th percentile, extremes, mean). `veil eval`, `veil bench`, the client
// and the server use this one implementation, so their numbers mean the
// same thing.
package stats
