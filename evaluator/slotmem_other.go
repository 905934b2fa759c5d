//go:build !unix

package evaluator

import "errors"

// mapChunk is not available here: slots stay on the Go heap.
func mapChunk(int) ([]byte, error) { return nil, errors.New("no anonymous mappings on this platform") }
