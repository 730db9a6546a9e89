package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		sync bool
	}{{"durable", Durable}, {"rename only", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o644))
			require.NoError(t, Write(dir, "f", []byte("new\n"), tc.sync))
			b, err := os.ReadFile(filepath.Join(dir, "f"))
			require.NoError(t, err)
			assert.Equal(t, "new\n", string(b))
			st, err := os.Stat(filepath.Join(dir, "f"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file left")
		})
	}
}

func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "missing"), "f", []byte("x"), Durable)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
	// The target is a folder: the rename fails and the temporary file goes.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o600))
	require.Error(t, Write(dir, "d", []byte("x"), false))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestIsTemp(t *testing.T) {
	assert.True(t, IsTemp(".manifest.json.123", "manifest.json"))
	assert.False(t, IsTemp("manifest.json", "manifest.json"))
	assert.False(t, IsTemp(".manifest.jsonx", "manifest.json"))
}
