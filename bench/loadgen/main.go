// Command loadgen is the HTTP load generator of the bench package's
// BenchmarkGateAPI: it runs in its own process, so that its goroutines and
// garbage collection do not share a Go scheduler with the benchmark, and
// talks to slogate over loopback only. It GETs one URL, either at a fixed
// rate (-rate) or as fast as -concurrency clients can (-rate 0), for at
// most -duration and -requests, and prints one JSON report on stdout.
//
// At a fixed rate, latency is measured from the moment a request was due,
// not from when a client got to send it, so that a server that falls
// behind shows as queueing delay (no coordinated omission).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// report is the JSON line loadgen prints.
type report struct {
	Requests int         `json:"requests"`
	Failed   int         `json:"failed"` // no answer: connection errors, timeouts
	Codes    map[int]int `json:"codes"`
	Seconds  float64     `json:"seconds"` // first request due → last answer
	PerSec   float64     `json:"perSec"`
	// Latency percentiles in milliseconds.
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	// Late counts requests sent more than 1 ms after they were due (fixed
	// rate only): the generator or the machine fell behind.
	Late  int    `json:"late"`
	Error string `json:"error,omitempty"`
}

func main() {
	target := flag.String("url", "", "URL to GET")
	rate := flag.Float64("rate", 0, "requests per second; 0: as fast as the clients can")
	duration := flag.Duration("duration", 10*time.Second, "how long to send requests at most")
	concurrency := flag.Int("concurrency", 64, "concurrent clients (connections)")
	requests := flag.Int("requests", 1_000_000, "requests at most")
	flag.Parse()
	if *target == "" || *concurrency <= 0 || *requests <= 0 || *duration <= 0 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -url, positive -concurrency, -requests and -duration are required")
		os.Exit(2)
	}
	g := &gen{
		url: *target,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				// No Proxy: a load on loopback ignores the environment's.
				MaxIdleConns: *concurrency, MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency,
			},
		},
		codes: map[int]int{},
	}
	var r report
	if *rate > 0 {
		r = g.fixedRate(*rate, *duration, *concurrency, *requests)
	} else {
		r = g.closedLoop(*duration, *concurrency, *requests)
	}
	out, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

type gen struct {
	url    string
	client *http.Client

	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int
	failed    int
	late      int
	firstErr  string
}

// do makes one request due at due and records its latency from then.
func (g *gen) do(due time.Time) {
	sent := time.Now()
	code, err := g.get()
	took := time.Since(due)
	g.mu.Lock()
	defer g.mu.Unlock()
	if sent.Sub(due) > time.Millisecond {
		g.late++
	}
	if err != nil {
		g.failed++
		if g.firstErr == "" {
			g.firstErr = err.Error()
		}
		return
	}
	g.codes[code]++
	g.latencies = append(g.latencies, took)
}

func (g *gen) get() (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, g.url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// fixedRate sends request i at start + i/rate from a pool of clients.
func (g *gen) fixedRate(rate float64, duration time.Duration, clients, limit int) report {
	n := min(limit, int(rate*duration.Seconds()))
	due := make(chan time.Time, n)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range due {
				g.do(d)
			}
		}()
	}
	start := time.Now()
	for i := range n {
		d := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(d); w > 0 {
			time.Sleep(w)
		}
		due <- d
	}
	close(due)
	wg.Wait()
	return g.report(time.Since(start))
}

// closedLoop runs clients that each send their next request as soon as
// the previous one is answered.
func (g *gen) closedLoop(duration time.Duration, clients, limit int) report {
	var wg sync.WaitGroup
	var mu sync.Mutex
	left := limit
	start := time.Now()
	end := start.Add(duration)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				mu.Lock()
				ok := left > 0
				left--
				mu.Unlock()
				if !ok {
					return
				}
				g.do(time.Now())
			}
		}()
	}
	wg.Wait()
	return g.report(time.Since(start))
}

func (g *gen) report(elapsed time.Duration) report {
	g.mu.Lock()
	defer g.mu.Unlock()
	slices.Sort(g.latencies)
	ms := func(q float64) float64 {
		if len(g.latencies) == 0 {
			return 0
		}
		return float64(g.latencies[int(q*float64(len(g.latencies)-1))]) / float64(time.Millisecond)
	}
	r := report{
		Requests: len(g.latencies) + g.failed, Failed: g.failed, Codes: g.codes,
		Seconds: elapsed.Seconds(), Late: g.late, Error: g.firstErr,
		P50: ms(0.5), P90: ms(0.9), P99: ms(0.99), P999: ms(0.999), Max: ms(1),
	}
	r.PerSec = float64(r.Requests) / r.Seconds
	return r
}
