package redact

import "testing"

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no user info", "http://prom:9090/api", "http://prom:9090/api"},
		{"password", "http://u:hunter2@prom:9090", "http://u:xxxxx@prom:9090"},
		{"user only", "http://u@prom:9090", "http://u@prom:9090"},
		{"other scheme", "ftp://u:hunter2@prom", "ftp://u:xxxxx@prom"},
		{"bad port", "http://u:hunter2@prom:90x0/path", "http://u:xxxxx@prom:90x0/path"},
		{"bad host", "http://u:hunter2@[::1/x", "http://u:xxxxx@[::1/x"},
		{"@ in the path", "http://u:hunter2@prom:9x/a@b", "http://u:xxxxx@prom:9x/a@b"},
		{"no scheme", "u:hunter2@prom:9x", "u:xxxxx@prom:9x"},
		{"not a URL at all", "%zz", "%zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := URL(tc.in); got != tc.want {
				t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
