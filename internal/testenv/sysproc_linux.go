package testenv

import (
	"os"
	"syscall"
)

// childSysProcAttr makes the kernel kill the child when the test binary
// dies (Pdeathsig; strictly, when the OS thread that started it exits, which
// the Go runtime only does for goroutines that exit while locked to their
// thread) and gives it its own process group, so that a terminal's Ctrl-C
// reaches the test binary, which then stops its children in order.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// killGroup sends SIGKILL to the child's process group.
func killGroup(p *os.Process) {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		_ = p.Kill()
	}
}
