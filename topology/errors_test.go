package topology_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/exactly-stream/exactly/topology"
)

func TestIsBadRecord(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	decode := &topology.DecodeError{Node: "src", Topic: "in", Part: "value", Err: cause}
	process := &topology.ProcessError{Node: "p", Err: cause}
	runtime := &topology.RuntimeError{Err: cause}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", cause, false},
		{"no source", fmt.Errorf("%w %q", topology.ErrNoSource, "x"), false},
		{"decode", decode, true},
		{"wrapped decode", fmt.Errorf("processing: %w", decode), true},
		{"process", process, true},
		{"wrapped process", fmt.Errorf("processing: %w", process), true},
		{"runtime", runtime, false},
		{"runtime inside process", &topology.ProcessError{Node: "p", Err: runtime}, false},
		{"process and runtime joined", errors.Join(process, runtime), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, topology.IsBadRecord(tt.err))
		})
	}
}

func TestErrorMessagesAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  error
		msg  string
	}{
		{"decode", &topology.DecodeError{Node: "src", Topic: "in", Part: "key", Err: cause}, `decoding key at source "src" (topic in): cause`},
		{"process", &topology.ProcessError{Node: "p", Err: cause}, `processing at node "p": cause`},
		{"runtime", &topology.RuntimeError{Err: cause}, `topology runtime: cause`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.msg, tt.err.Error())
			require.ErrorIs(t, tt.err, cause)
			require.Same(t, cause, errors.Unwrap(tt.err))
		})
	}
}
