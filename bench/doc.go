// Package bench is Veil's benchmark suite, for people comparing
// homomorphic-encryption latency: the runner behind `veil bench`, and Go
// benchmarks (go test -bench) of every stage.
//
// # The suite
//
// A [Suite] is a fixed, recorded definition ([DefaultSuite] is "full",
// [QuickSuite] the CI smoke test). [Run] measures, in order:
//
//   - he: for every combination of ring degree (LogN), hidden size, images
//     per ciphertext and workers: key generation (client) and key decoding
//     (server), encryption, each stage of the encrypted network
//     (he.Network.EvaluateTraced: matrix1, sum1, square, matrix2, sum2,
//     rescale, rerandomize), decryption, end to end, and the wire sizes.
//     The hidden size 128 runs the committed default model; other sizes
//     random 8-bit weights of the same layer kinds. Each point checks its
//     decrypted scores against the plaintext model before timing.
//   - plaintext: the default model in the clear (exact fixed point and
//     float), its accuracy on the 10,000 MNIST test images, the accuracy of
//     encrypted classification, and the ratios of encrypted to plaintext
//     inference time.
//   - grpc: the inference service on loopback: key upload, round trips,
//     and throughput with 1..C concurrent clients.
//   - zk: Groth16 proofs of challenge batches per batch size, and their
//     verification (keys cached in the data directory; a ceremony-of-one
//     setup runs when none are cached, timed once as "setup").
//   - ledger: accepted transactions per second through the embedded ledger
//     (receipts, reveals, and challenge proofs verified with real Groth16).
//   - peer (optional): the same network in Microsoft SEAL through
//     node-seal, with the ratios of its latencies and sizes to Veil's.
//
// Every timing is repeated; results report the median and the 95th
// percentile (nearest rank), never a single run. The [Result] (results.json)
// carries the [Environment]: CPU model, cores, Go version, library versions
// from the build information, git commit, date and load averages.
//
// [WriteOutputs] writes results.json, results.md and the plots (PNG and
// SVG, drawn with gonum/plot); [Validate] checks a result for completeness
// and plausibility.
package bench
