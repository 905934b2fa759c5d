package supervise

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	cause := errors.New("the chaos command failed (exit status 2); run r1 aborted")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "told already", err: &Error{Outcome: Aborted}, want: "chaos run: aborted"},
		{name: "gate closed", err: &Error{Outcome: GateClosed}, want: "chaos run: gate closed"},
		{name: "zero is unknown", err: &Error{}, want: "chaos run: unknown"},
		{name: "with a reason", err: &Error{Outcome: Unknown, Err: cause}, want: cause.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	var e *Error
	if err := fmt.Errorf("wrapped: %w", unknown(cause)); !errors.As(err, &e) || e.Outcome != Unknown || !errors.Is(err, cause) {
		t.Errorf("errors.As/Is do not see through %v", err)
	}
}
