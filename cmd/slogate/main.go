// Command slogate evaluates SLOs and steady-state hypotheses against
// Prometheus and gates chaos experiments on them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "slogate:", err)
		os.Exit(exitCode(err))
	}
}
