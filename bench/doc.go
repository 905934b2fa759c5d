// Package bench holds the benchmarks that need real servers: what
// slogate's incremental evaluation costs Prometheus per evaluation cycle,
// compared with naive full-window queries and with recording rules
// (BenchmarkPrometheusCost). Everything is in the _test.go files, so that
// a plain `go test ./...` builds it and runs only the cheap checks of the
// query builders; `make bench` runs the measurement, and BENCHMARKS.md
// keeps its results.
package bench
