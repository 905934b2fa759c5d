// Package redact hides credentials in values that end up in error messages
// and logs.
package redact

import (
	"net/url"
	"strings"
)

// URL returns s with the password of its user info replaced by "xxxxx", as
// url.URL.Redacted does, also when s does not parse as a URL: a string that
// was meant to be a URL but is broken (a bad port, a bad scheme, a stray
// character) may still carry a password, and it is typically such a string
// that an error message quotes.
func URL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Opaque == "" {
		return u.Redacted()
	}
	// Unparseable, or without "//" ("user:pass@host" reads as scheme
	// "user"): hide everything between the scheme and the last "@"
	// before the path, which is where user info would be.
	rest := s
	prefix := ""
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	user := authority[:at]
	if i := strings.Index(user, ":"); i >= 0 {
		user = user[:i+1] + "xxxxx"
	} else {
		user = "xxxxx"
	}
	return prefix + user + rest[at:]
}
