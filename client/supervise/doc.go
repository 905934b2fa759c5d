// Package supervise runs a chaos command as a run of an experiment on a
// slogate server: it starts the run through the experiment's gate, runs
// the command while following the run, stops the command when the server
// aborts the run, and, once the command has succeeded, finishes the run and
// waits for the recovery verdict.
//
// It is the engine of `slogate run`, importable so that it can be tested,
// and used, without the command line. Its messages are the command's: they
// are written for people and name the flags of `slogate run` (--grace,
// --server, ...) where a flag is the remedy. Stopping a command and
// everything it started needs process groups and POSIX signals, so the
// Supervisor is built on unix systems only.
package supervise
