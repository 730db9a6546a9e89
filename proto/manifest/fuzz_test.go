package manifest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives a Marshal/Parse round trip unchanged.
func FuzzParse(f *testing.F) {
	valid, err := Marshal(sample())
	require.NoError(f, err)
	m := sample()
	m.Array, m.NodeFacts = nil, nil
	minimal, err := Marshal(m)
	require.NoError(f, err)
	f.Add(valid)
	f.Add(minimal)
	f.Add([]byte(`{"format":"slurm-dmtcp/manifest","version":2}`))
	f.Add([]byte(`{"format":"slurm-dmtcp/manifest","version":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		out, err := Marshal(m)
		require.NoError(t, err, "Parse accepted what Marshal rejects")
		m2, err := Parse(out)
		require.NoError(t, err, "Parse rejects Marshal output:\n%s", out)
		out2, err := Marshal(m2)
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2))
	})
}
