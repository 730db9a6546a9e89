package safepath

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// foreign is a uid that is neither root nor the caller.
const foreign = 54321

// chownForeign gives p to another user, or skips the test when the caller cannot (not root).
func chownForeign(t *testing.T, p string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: giving a file to another user needs root")
	}
	require.NoError(t, os.Lchown(p, foreign, foreign))
}

func owner(t *testing.T, p string) int {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

func TestPrivateDir(t *testing.T) {
	me := os.Getuid()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, base string) (path string)
		refused string // the refused component (relative to base), "" when accepted
		why     string
		check   func(t *testing.T, base string)
	}{
		{name: "missing components are made 0700", prepare: func(t *testing.T, base string) string {
			return filepath.Join(base, "a", "b", "c")
		}, check: func(t *testing.T, base string) {
			for _, p := range []string{"a", "a/b", "a/b/c"} {
				fi, err := os.Lstat(filepath.Join(base, p))
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), p)
				assert.True(t, fi.IsDir(), p)
			}
		}},
		{name: "an existing folder of the user is made 0700", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "a"), 0o755))
			return filepath.Join(base, "a")
		}, check: func(t *testing.T, base string) {
			fi, err := os.Lstat(filepath.Join(base, "a"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
		}},
		{name: "a parent of another user", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "other"), 0o755))
			chownForeign(t, filepath.Join(base, "other"))
			return filepath.Join(base, "other", "job")
		}, refused: "other", why: "belongs to uid 54321"},
		{name: "the folder itself of another user", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "job"), 0o700))
			chownForeign(t, filepath.Join(base, "job"))
			return filepath.Join(base, "job")
		}, refused: "job", why: "belongs to uid 54321, not to the job's user"},
		{name: "a link of another user in the middle", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "trap"), 0o777))
			require.NoError(t, os.Symlink(filepath.Join(base, "trap"), filepath.Join(base, "link")))
			chownForeign(t, filepath.Join(base, "link"))
			return filepath.Join(base, "link", "job")
		}, refused: "link", why: "is a symbolic link of uid 54321", check: func(t *testing.T, base string) {
			_, err := os.Lstat(filepath.Join(base, "trap", "job"))
			assert.True(t, os.IsNotExist(err), "nothing made through the link")
		}},
		{name: "a link of the user in the middle is followed", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "real"), 0o700))
			require.NoError(t, os.Symlink("../"+filepath.Base(base)+"/real", filepath.Join(base, "link")))
			return filepath.Join(base, "link", "job")
		}, check: func(t *testing.T, base string) {
			fi, err := os.Lstat(filepath.Join(base, "real", "job"))
			require.NoError(t, err, "made where the user's own link leads")
			assert.True(t, fi.IsDir())
		}},
		{name: "a link as the folder itself", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "real"), 0o700))
			require.NoError(t, os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "job")))
			return filepath.Join(base, "job")
		}, refused: "job", why: "is a symbolic link, not a folder"},
		{name: "a loop of links", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Symlink("b", filepath.Join(base, "a")))
			require.NoError(t, os.Symlink("a", filepath.Join(base, "b")))
			return filepath.Join(base, "a", "job")
		}, refused: "", why: "too many symbolic links"},
		{name: "a file in the way", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.WriteFile(filepath.Join(base, "f"), nil, 0o600))
			return filepath.Join(base, "f", "job")
		}, refused: "f", why: "is not a folder"},
		{name: "a parent writable by all, not sticky", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "open"), 0o777))
			require.NoError(t, os.Chmod(filepath.Join(base, "open"), 0o777))
			return filepath.Join(base, "open", "job")
		}, refused: "open", why: "writable by others (mode 0777) and not sticky"},
		{name: "a parent writable by its group, not sticky", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "grp"), 0o770))
			require.NoError(t, os.Chmod(filepath.Join(base, "grp"), 0o770))
			return filepath.Join(base, "grp", "job")
		}, refused: "grp", why: "writable by others (mode 0770)"},
		{name: "a sticky shared parent", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "scratch"), 0o777))
			require.NoError(t, os.Chmod(filepath.Join(base, "scratch"), os.ModeSticky|0o777))
			return filepath.Join(base, "scratch", "u", "job")
		}, check: func(t *testing.T, base string) {
			assert.Equal(t, os.Getuid(), owner(t, filepath.Join(base, "scratch", "u", "job")))
		}},
		{name: "a sticky shared parent with the next folder of another user", prepare: func(t *testing.T, base string) string {
			require.NoError(t, os.Mkdir(filepath.Join(base, "scratch"), 0o777))
			require.NoError(t, os.Chmod(filepath.Join(base, "scratch"), os.ModeSticky|0o777))
			require.NoError(t, os.Mkdir(filepath.Join(base, "scratch", "u"), 0o777))
			chownForeign(t, filepath.Join(base, "scratch", "u"))
			return filepath.Join(base, "scratch", "u", "job")
		}, refused: "scratch/u", why: "belongs to uid 54321, not to root or the job's user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			p := tc.prepare(t, base)
			err := PrivateDir("checkpoint_dir", p, me)
			if tc.why == "" {
				require.NoError(t, err)
				fi, err := os.Lstat(p)
				require.NoError(t, err)
				assert.True(t, fi.IsDir())
				assert.Equal(t, me, owner(t, p))
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "checkpoint_dir "+p+":", "the message names the key and the path")
				assert.Contains(t, err.Error(), tc.why)
				if tc.refused != "" {
					var pe *Error
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, filepath.Join(base, tc.refused), pe.Component)
				}
			}
			if tc.check != nil {
				tc.check(t, base)
			}
		})
	}
}

func TestPrivateDirRelative(t *testing.T) {
	err := PrivateDir("checkpoint_dir", "rel/ative", os.Getuid())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not an absolute path")
}

func TestUserRunDir(t *testing.T) {
	me := os.Getuid()
	name := "slurm-dmtcp-" + strconv.Itoa(me)
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, rt string)
		want    string // the folder's name; "*" any fresh alternative
		warned  string
		err     string
	}{
		{name: "nothing there yet", want: name},
		{name: "the user's own folder", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.Mkdir(filepath.Join(rt, name), 0o755))
		}, want: name},
		{name: "a folder planted by another user", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.Mkdir(filepath.Join(rt, name), 0o777))
			chownForeign(t, filepath.Join(rt, name))
		}, want: "*", warned: "belongs to uid 54321"},
		{name: "a link planted by another user", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.Mkdir(filepath.Join(rt, "trap"), 0o777))
			require.NoError(t, os.Symlink(filepath.Join(rt, "trap"), filepath.Join(rt, name)))
			chownForeign(t, filepath.Join(rt, name))
		}, want: "*", warned: "is a symbolic link of uid 54321"},
		{name: "a link to a folder of the user's", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.Mkdir(filepath.Join(rt, "mine"), 0o700))
			require.NoError(t, os.Symlink(filepath.Join(rt, "mine"), filepath.Join(rt, name)))
		}, want: "*", warned: "is a symbolic link"},
		{name: "a file planted", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.WriteFile(filepath.Join(rt, name), nil, 0o644))
		}, want: "*", warned: "cannot be opened as a folder"},
		{name: "an alternative of the user's is taken again", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.WriteFile(filepath.Join(rt, name), nil, 0o644))
			require.NoError(t, os.Mkdir(filepath.Join(rt, name+".zz"), 0o700))
			require.NoError(t, os.Mkdir(filepath.Join(rt, name+".aa"), 0o700))
		}, want: name + ".aa", warned: "cannot be opened"},
		{name: "an alternative planted by another user is passed over", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.WriteFile(filepath.Join(rt, name), nil, 0o644))
			require.NoError(t, os.Mkdir(filepath.Join(rt, name+".aa"), 0o777))
			chownForeign(t, filepath.Join(rt, name+".aa"))
		}, want: "*", warned: "cannot be opened"},
		{name: "runtime_dir writable by all, not sticky", prepare: func(t *testing.T, rt string) {
			require.NoError(t, os.Chmod(rt, 0o777))
		}, err: "runtime_dir RT: is writable by others (mode 0777) and not sticky"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := filepath.Join(t.TempDir(), "rt")
			require.NoError(t, os.Mkdir(rt, 0o777))
			require.NoError(t, os.Chmod(rt, os.ModeSticky|0o777))
			if tc.prepare != nil {
				tc.prepare(t, rt)
			}
			var warnings []string
			got, err := UserRunDir(rt, me, func(m string) { warnings = append(warnings, m) })
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), strings.ReplaceAll(tc.err, "RT", rt))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, rt, filepath.Dir(got))
			if tc.want == "*" {
				assert.True(t, strings.HasPrefix(filepath.Base(got), name+"."), got)
			} else {
				assert.Equal(t, filepath.Join(rt, tc.want), got)
			}
			fi, err := os.Lstat(got)
			require.NoError(t, err)
			assert.True(t, fi.IsDir())
			assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
			assert.Equal(t, me, owner(t, got))
			if tc.warned == "" {
				assert.Empty(t, warnings)
			} else {
				require.Len(t, warnings, 1)
				assert.Contains(t, warnings[0], filepath.Join(rt, name))
				assert.Contains(t, warnings[0], tc.warned)
			}
			// Found again by what looks for the user's runtime folders (dmtcpctl).
			assert.Contains(t, RunDirs(rt, me), got)
			if trap := filepath.Join(rt, "trap"); tc.name == "a link planted by another user" {
				ents, _ := os.ReadDir(trap)
				assert.Empty(t, ents, "nothing made through the planted link")
			}
		})
	}
}

func TestRunDirs(t *testing.T) {
	me := os.Getuid()
	name := "slurm-dmtcp-" + strconv.Itoa(me)
	rt := t.TempDir()
	for _, n := range []string{name, name + ".b", name + ".a"} {
		require.NoError(t, os.Mkdir(filepath.Join(rt, n), 0o700))
	}
	require.NoError(t, os.Symlink(filepath.Join(rt, name), filepath.Join(rt, name+".link")))
	require.NoError(t, os.WriteFile(filepath.Join(rt, name+".file"), nil, 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(rt, "slurm-dmtcp-"+strconv.Itoa(me+1)), 0o700))
	assert.Equal(t, []string{filepath.Join(rt, name), filepath.Join(rt, name+".a"), filepath.Join(rt, name+".b")}, RunDirs(rt, me))
	assert.Empty(t, RunDirs(filepath.Join(rt, "missing"), me))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Lchown(filepath.Join(rt, name+".a"), foreign, foreign))
		assert.Equal(t, []string{filepath.Join(rt, name), filepath.Join(rt, name+".b")}, RunDirs(rt, me), "a folder of another user is not the user's")
	}
}
