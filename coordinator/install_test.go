package coordinator

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fakeInstall(t *testing.T, progs ...string) string {
	dir := t.TempDir()
	for _, p := range progs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755))
	}
	return dir
}

func TestFind(t *testing.T) {
	full := fakeInstall(t, programs...)
	partial := fakeInstall(t, "dmtcp_launch", "dmtcp_command")
	prefix := filepath.Dir(full)
	require.NoError(t, os.Rename(full, filepath.Join(prefix, "bin")))
	full = filepath.Join(prefix, "bin")

	for _, tc := range []struct {
		name, prefix, path string
		wantBin            string
		wantErr            []string
	}{
		{name: "configured prefix", prefix: prefix, wantBin: full},
		{name: "prefix is a promise: PATH is not searched", prefix: partial, path: full,
			wantErr: []string{"DMTCP not found", partial + "/bin", "dmtcp_prefix=" + partial}},
		{name: "first complete folder of PATH", path: partial + ":" + full, wantBin: full},
		{name: "relative PATH entries ignored", path: "bin:" + full, wantBin: full},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := Find(tc.prefix, tc.path)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantBin, inst.Bin)
			assert.Equal(t, filepath.Join(tc.wantBin, "dmtcp_restart"), inst.Restart)
		})
	}
}

func TestFindNamesEveryFolder(t *testing.T) {
	if _, err := os.Stat(ConventionalPrefix + "/bin/dmtcp_launch"); err == nil {
		t.Skip("SKIP: DMTCP is installed in " + ConventionalPrefix + ", so the not-found message cannot be produced from PATH")
	}
	a, b := t.TempDir(), t.TempDir()
	_, err := Find("", a+":"+b)
	require.Error(t, err)
	assert.Contains(t, err.Error(), a+":"+b+":"+ConventionalPrefix+"/bin")
	assert.Contains(t, err.Error(), "dmtcp_coordinator, dmtcp_launch, dmtcp_command, dmtcp_restart")
}
