package client

import (
	"fmt"
	"io"
)

// WriteGateText prints a gate answer for people: the status, then one line
// per reason, each line starting with prefix. `slogate gate` prints it as
// it is; `slogate run` prefixes it when the gate refuses a run.
func WriteGateText(w io.Writer, prefix string, answer *GateAnswer) error {
	if _, err := fmt.Fprintf(w, "%sgate %s: %s\n", prefix, answer.Experiment, answer.Status); err != nil {
		return err
	}
	for _, r := range answer.Reasons {
		subject := string(r.Kind)
		if r.Name != "" {
			subject += " " + r.Name
		}
		if _, err := fmt.Fprintf(w, "%s  - %s: %s\n", prefix, subject, r.Message); err != nil {
			return err
		}
	}
	return nil
}
