// Command slogate evaluates SLOs and steady-state hypotheses against
// Prometheus and gates chaos experiments on them.
package main

import (
	"errors"
	"fmt"
	"os"
	// The time zones of calendar SLOs (Europe/Berlin...) load on hosts and
	// images without /usr/share/zoneinfo too.
	_ "time/tzdata"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// A command that already told the user what went wrong (check
		// printing its diagnostics) exits with a bare code and nothing more.
		var e *exitError
		if !errors.As(err, &e) || e.err != nil {
			fmt.Fprintln(os.Stderr, "slogate:", err)
		}
		os.Exit(exitCode(err))
	}
}
