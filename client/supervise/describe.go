package supervise

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/slogate/slogate/client"
)

// DescribeError turns a failed call to the server at server into a message
// that says what to do about it, in terms of the flags of slogate's client
// commands.
func DescribeError(server string, err error) error {
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr):
		if apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden {
			return fmt.Errorf("%w (set --token or --token-file; for a server with basic auth, --basic-auth-user and --basic-auth-password-file)", err)
		}
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from slogate at %s in time: %w (is it overloaded or behind a slow proxy? raise --timeout)", server, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("cannot reach slogate at %s: %v (is slogate serve running? set --server)", server, rootCause(err))
}

// rootCause is the innermost error of a chain: for a failed connection,
// "connection refused" or "no such host" rather than the whole URL again.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
