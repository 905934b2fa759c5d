// Package examples holds the example definitions and configuration files;
// the demo's definitions are embedded from here so that `slogate demo`
// shows exactly what examples/demo says.
package examples

import "embed"

// Demo holds demo/*.yaml, the definitions of `slogate demo`.
//
//go:embed demo/*.yaml
var Demo embed.FS
