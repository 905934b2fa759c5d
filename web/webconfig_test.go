package web

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServesTLS(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	testCert, testKey := selfSigned(t)
	cert, key := write("cert.pem", testCert), write("key.pem", testKey)
	const hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
	tests := []struct {
		name    string
		file    string
		want    bool
		wantErr string
	}{
		{name: "no file"},
		{name: "basic auth only", file: write("basic.yml", "basic_auth_users:\n  sre: "+hash+"\n")},
		{name: "headers only", file: write("headers.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")},
		{name: "empty tls_server_config", file: write("empty-tls.yml", "tls_server_config: {}\nbasic_auth_users:\n  sre: "+hash+"\n")},
		{name: "cert files", file: write("tls.yml", "tls_server_config:\n  cert_file: "+cert+"\n  key_file: "+key+"\n"), want: true},
		{name: "cert files relative to the file", file: write("tls-rel.yml", "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"), want: true},
		{name: "inline cert, and basic auth", file: write("inline.yml", "tls_server_config:\n  cert: |\n"+indent(testCert)+"  key: |\n"+indent(testKey)+
			"basic_auth_users:\n  sre: "+hash+"\n"), want: true},
		{name: "cert without key", file: write("nokey.yml", "tls_server_config:\n  cert_file: "+cert+"\n"), wantErr: "missing one of key or key_file"},
		{name: "unknown key", file: write("typo.yml", "tls_server_confg: {}\n"), wantErr: "field tls_server_confg not found"},
		{name: "missing file", file: filepath.Join(dir, "nope.yml"), wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ServesTLS(tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "web.config-file "+tt.file) {
					t.Fatalf("err = %v, want one naming web.config-file %s and containing %q", err, tt.file, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ServesTLS = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func indent(s string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return "    " + strings.Join(lines, "    ") + "\n"
}

// selfSigned returns a PEM certificate and key for localhost.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}
