//go:build !linux

package testenv

import (
	"os"
	"syscall"
)

// Outside Linux there is no Pdeathsig: a killed test binary can leave its
// children running. The tests are meant for Linux (CI); this keeps the
// package building elsewhere.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) { _ = p.Kill() }
