package wordcount

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWords(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		line string
		want []string
	}{
		"empty":       {"", []string{}},
		"punctuation": {"Hello, world! Hello?", []string{"hello", "world", "hello"}},
		"digits":      {"route 66 and  R2-D2", []string{"route", "66", "and", "r2", "d2"}},
		"unicode":     {"Grüße über Öl", []string{"grüße", "über", "öl"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Words(tc.line))
		})
	}
}

func TestTopologyShape(t *testing.T) {
	t.Parallel()
	topo, err := Topology("x-")
	require.NoError(t, err)
	require.Equal(t, []string{"x-" + TopicLines}, topo.SourceTopics())
	require.Equal(t, []string{"x-" + TopicCounts}, topo.SinkTopics())
	require.Equal(t, []string{StoreWords}, topo.StoreNames())
}
