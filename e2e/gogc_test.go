package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/slogate/slogate/internal/testenv"
)

// TestServeGCPercent: serve runs the garbage collector at GOGC=50 unless the
// environment sets GOGC (the slice buffers are outside the Go heap; see
// BENCHMARKS.md), as Go's own metric go_gc_gogc_percent shows.
func TestServeGCPercent(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want float64
	}{{nil, 50}, {[]string{"GOGC=80"}, 80}} {
		t.Run(fmt.Sprint(tc.env), func(t *testing.T) {
			o := serverConfig(serverOptions{promURL: "http://127.0.0.1:9"}) // never answers: not needed here
			o.Env, o.NoWait = tc.env, true
			s := testenv.StartSlogate(t, o)
			var got float64
			err := testenv.PollEvery(30*time.Second, 50*time.Millisecond, func() error {
				m, err := s.Metrics("go_gc_gogc_percent")
				if err != nil {
					return err
				}
				v, ok := m["go_gc_gogc_percent"]
				if !ok {
					return fmt.Errorf("no go_gc_gogc_percent in /metrics")
				}
				got = v
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("go_gc_gogc_percent = %v with environment %v, want %v", got, tc.env, tc.want)
			}
		})
	}
}
