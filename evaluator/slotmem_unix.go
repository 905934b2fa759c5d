//go:build unix

package evaluator

import "syscall"

// mapChunk maps n bytes of private, zeroed memory outside the Go heap. The
// pages become resident when first written.
func mapChunk(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
}
