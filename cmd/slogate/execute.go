package main

import (
	"errors"
	"fmt"
	"io"
)

// execute runs the slogate command line args with the given outputs and
// returns the process exit code, as main does; it lets tests drive whole
// commands in process.
func execute(args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	// Same rule as main: a bare exit code means the command already told
	// the user.
	var e *exitError
	if !errors.As(err, &e) || e.err != nil {
		fmt.Fprintln(stderr, "slogate:", err)
	}
	return exitCode(err)
}
