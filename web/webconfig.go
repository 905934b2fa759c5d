package web

import (
	"fmt"
	"os"

	toolkit "github.com/prometheus/exporter-toolkit/web"
	yamlv2 "go.yaml.in/yaml/v2"
)

// ServesTLS reports whether a server with this exporter-toolkit web config
// file serves HTTPS: the file may configure basic auth or headers only, and
// then the listener stays plain HTTP. An empty path serves HTTP.
func ServesTLS(webConfigFile string) (bool, error) {
	if webConfigFile == "" {
		return false, nil
	}
	// Validate is what New and the toolkit check; after it, a file that
	// names a certificate has a usable TLS configuration.
	if err := toolkit.Validate(webConfigFile); err != nil {
		return false, fmt.Errorf("web.config-file %s: %w", webConfigFile, err)
	}
	b, err := os.ReadFile(webConfigFile)
	if err != nil {
		return false, fmt.Errorf("web.config-file %s: %w", webConfigFile, err)
	}
	var c toolkit.Config
	if err := yamlv2.Unmarshal(b, &c); err != nil {
		return false, fmt.Errorf("web.config-file %s: %w", webConfigFile, err)
	}
	return c.TLSConfig.TLSCertPath != "" || c.TLSConfig.TLSCert != "", nil
}
