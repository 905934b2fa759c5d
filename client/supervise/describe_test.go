package supervise

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/slogate/slogate/client"
)

func TestDescribeError(t *testing.T) {
	const server = "http://slogate:8080"
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "unauthorized", err: &client.APIError{Status: http.StatusUnauthorized, Message: "missing or wrong bearer token"},
			want: "server answered 401 Unauthorized: missing or wrong bearer token (set --token or --token-file; for a server with basic auth, --basic-auth-user and --basic-auth-password-file)"},
		{name: "other refusal as it is", err: fmt.Errorf("getting run %q: %w", "r1", &client.APIError{Status: http.StatusNotFound, Message: "no run"}),
			want: `getting run "r1": server answered 404 Not Found: no run`},
		{name: "timeout", err: fmt.Errorf("asking the gate: %w", context.DeadlineExceeded),
			want: "no answer from slogate at http://slogate:8080 in time: asking the gate: context deadline exceeded (is it overloaded or behind a slow proxy? raise --timeout)"},
		{name: "cancelled as it is", err: fmt.Errorf("asking the gate: %w", context.Canceled), want: "asking the gate: context canceled"},
		{name: "unreachable, by its root cause", err: fmt.Errorf("asking the gate: %w", refused),
			want: "cannot reach slogate at http://slogate:8080: connection refused (is slogate serve running? set --server)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DescribeError(server, tt.err)
			if got.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
