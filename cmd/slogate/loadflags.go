package main

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"

	"github.com/slogate/slogate/slo"
)

// slothPeriodFlag is the name of the flag (and, for serve, the
// configuration key) that sets the SLO window of Sloth SLOs.
const slothPeriodFlag = "sloth.default-period"

// loadFlags are the flags of the commands that read definitions.
type loadFlags struct {
	slothPeriod promDuration
}

func (f *loadFlags) register(fs *pflag.FlagSet) {
	f.slothPeriod = promDuration(slo.DefaultWindow)
	fs.Var(&f.slothPeriod, slothPeriodFlag, "SLO window of Sloth SLOs, whose specs have none (Sloth's --default-slo-period); Sloth AlertWindows of this period apply to them")
}

// load reads the definitions at paths with the flags' options.
func (f *loadFlags) load(paths []string) (*slo.Set, slo.Diagnostics) {
	return slo.LoadWith(slo.LoadOptions{SlothPeriod: time.Duration(f.slothPeriod)}, paths...)
}

// promDuration is a flag holding a Prometheus duration (7d, 30d, 1h30m).
type promDuration time.Duration

func (d *promDuration) String() string { return slo.FormatDuration(time.Duration(*d)) }
func (d *promDuration) Type() string   { return "duration" }

func (d *promDuration) Set(s string) error {
	v, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 7d, 30d)")
	}
	if w := time.Duration(v); w < slo.MinWindow || w > slo.MaxWindow {
		return fmt.Errorf("%s is out of range: an SLO window is between %s and %s", s, slo.FormatDuration(slo.MinWindow), slo.FormatDuration(slo.MaxWindow))
	}
	*d = promDuration(v)
	return nil
}
