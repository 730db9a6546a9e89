//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// The .deb that make deb builds, unpacked into a scratch root with dpkg -x (never into the
// machine's /usr): its files are where the docs say, its binaries print this release, and
// a --dmtcp job on the test cluster, with plugstack.conf naming the unpacked plugin, agent
// and launcher, checkpoints. SDMTCP_DEB=path uses an already built .deb.
func TestDebInstallsAndRuns(t *testing.T) {
	for _, tool := range []string{"dpkg-buildpackage", "dh", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not installed (apt-get install dpkg-dev debhelper)", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	deb := os.Getenv("SDMTCP_DEB")
	if deb == "" {
		goBin, err := exec.LookPath("go")
		require.NoError(t, err)
		cmd := exec.Command("make", "deb", "GO="+goBin)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make deb:\n%s", out)
		deb = filepath.Join(repo, "build", "deb", "slurm-dmtcp_"+proto.Version+"_"+debArch(t)+".deb")
	}
	info, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Depends").Output()
	require.NoError(t, err)
	assert.Contains(t, string(info), "Package: slurm-dmtcp\n")
	assert.Contains(t, string(info), "Version: "+proto.Version+"\n")
	assert.Contains(t, string(info), "slurm-wlm-basic-plugins")

	// The scratch root is readable by the job's user: the agent runs as that user.
	root, err := os.MkdirTemp("/var/tmp", "sdmtcp-deb-root-")
	require.NoError(t, err)
	t.Cleanup(func() { removeUnlessFailed(t, root) })
	require.NoError(t, os.Chmod(root, 0o755))
	out, err := exec.Command("dpkg", "-x", deb, root).CombinedOutput()
	require.NoError(t, err, "dpkg -x: %s", out)

	plugin := "usr/lib/" + multiarch(t) + "/slurm-wlm/spank_dmtcp.so"
	want := []string{
		plugin,
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-agent",
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-exec",
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-coordguard.so",
		"usr/bin/dmtcpctl",
		"usr/bin/slurm-dmtcp-nodeprobe",
		"lib/systemd/system/slurm-dmtcp-nodeprobe.service",
		"usr/share/slurm-dmtcp/plugstack.conf.example",
		"usr/share/slurm-dmtcp/systemd/publish.conf",
		"usr/share/slurm-dmtcp/python/slurm_dmtcp/__init__.py",
		"usr/share/slurm-dmtcp/python/slurm_dmtcp/py.typed",
		"usr/share/slurm-dmtcp/examples/job-simple.sh",
		"usr/share/doc/slurm-dmtcp/docs/admin.md",
		"usr/share/doc/slurm-dmtcp/README.md",
		"usr/share/doc/slurm-dmtcp/copyright",
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("DMTCP_PREFIX"), "include", "dmtcp.h")); os.Getenv("DMTCP_PREFIX") != "" && err == nil {
		want = append(want, "usr/libexec/slurm-dmtcp/slurm-dmtcp-sigterm.so")
	}
	var have []string
	require.NoError(t, filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(root, p)
			have = append(have, rel)
		}
		return err
	}))
	sort.Strings(have)
	for _, w := range want {
		assert.Contains(t, have, w, "files of %s", deb)
	}
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/slurm-dmtcp-nodeprobe.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart=/usr/bin/slurm-dmtcp-nodeprobe ")

	for _, bin := range []string{
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-agent", "usr/libexec/slurm-dmtcp/slurm-dmtcp-exec",
		"usr/bin/dmtcpctl", "usr/bin/slurm-dmtcp-nodeprobe",
	} {
		out, err := exec.Command(filepath.Join(root, bin), "--version").CombinedOutput()
		require.NoError(t, err, "%s --version: %s", bin, out)
		assert.Equal(t, proto.VersionLine(filepath.Base(bin))+"\n", string(out))
	}

	// A --dmtcp job from the unpacked package on the test cluster.
	c := newCluster(t)
	needDMTCP(t)
	lib := filepath.Join(root, "usr/libexec/slurm-dmtcp")
	line := "required " + filepath.Join(root, plugin) + " agent=" + lib + "/slurm-dmtcp-agent exec=" + lib + "/slurm-dmtcp-exec"
	if p := os.Getenv("DMTCP_PREFIX"); p != "" {
		line += " dmtcp_prefix=" + p
	}
	policyMu.Lock()
	require.NoError(t, os.WriteFile(c.plugstack, []byte(line+" min_interval=1\n"), 0o644))
	t.Cleanup(func() {
		_ = os.WriteFile(c.plugstack, []byte(c.baseLine+"\n"), 0o644)
		policyMu.Unlock()
	})
	dir := workdir(t)
	script := writeScript(t, dir, "loop.sh", "#!/bin/bash\nfor i in $(seq 1 8); do sleep 1; echo $i; done\necho done\n")
	id := c.sbatch(t, dir, "--dmtcp-interval=2s", "-o", dir+"/out", "-e", dir+"/err", script)
	j := c.waitDone(t, id, 120*time.Second)
	errb, _ := os.ReadFile(dir + "/err")
	assert.Equal(t, "COMPLETED", j.State, "err: %s", errb)
	out, _ = os.ReadFile(dir + "/out")
	assert.True(t, strings.HasSuffix(string(out), "8\ndone\n"), "out: %s", out)
	stepDir := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch")
	gens, _ := filepath.Glob(stepDir + "/gen-*")
	assert.NotEmpty(t, gens, "a verified checkpoint generation in %s", stepDir)
	assert.Contains(t, string(errb), "slurm-dmtcp: checkpoint (periodic) generation")
	// The job ran the unpacked package's plugin: slurmd's log names its release for the job.
	logs, _ := filepath.Glob(filepath.Join(c.dir, "log", "slurmd*.log"))
	var all string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		all += string(b)
	}
	assert.Contains(t, all, "["+id+".batch] dmtcp: slurm-dmtcp "+proto.Version+" runs this step")
}

func debArch(t *testing.T) string {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

func multiarch(t *testing.T) string {
	out, err := exec.Command("dpkg-architecture", "-qDEB_HOST_MULTIARCH").Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}

// The RPM of contrib/rpm/slurm-dmtcp.spec (make rpm, or SDMTCP_RPM=path) holds the same
// files as the .deb in EL's paths, and its binaries print this release.
func TestRpmHasTheFiles(t *testing.T) {
	for _, tool := range []string{"rpmbuild", "rpm2cpio", "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not installed (on Debian: apt-get install rpm cpio)", tool)
		}
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	rpm := os.Getenv("SDMTCP_RPM")
	if rpm == "" {
		goBin, err := exec.LookPath("go")
		require.NoError(t, err)
		cmd := exec.Command("make", "rpm", "GO="+goBin)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "make rpm:\n%s", out)
		found, _ := filepath.Glob(filepath.Join(repo, "build", "rpm", "RPMS", "*", "slurm-dmtcp-"+proto.Version+"-1*.rpm"))
		require.Len(t, found, 1, "make rpm:\n%s", out)
		rpm = found[0]
	}
	root := t.TempDir()
	cmd := exec.Command("sh", "-c", `rpm2cpio "$1" | cpio -idm --quiet`, "sh", rpm)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "rpm2cpio: %s", out)
	want := []string{
		"usr/lib64/slurm/spank_dmtcp.so",
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-agent",
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-exec",
		"usr/libexec/slurm-dmtcp/slurm-dmtcp-coordguard.so",
		"usr/bin/dmtcpctl",
		"usr/bin/slurm-dmtcp-nodeprobe",
		"usr/lib/systemd/system/slurm-dmtcp-nodeprobe.service",
		"usr/share/slurm-dmtcp/plugstack.conf.example",
		"usr/share/slurm-dmtcp/systemd/publish.conf",
		"usr/share/slurm-dmtcp/python/slurm_dmtcp/__init__.py",
		"usr/share/slurm-dmtcp/examples/job-simple.sh",
		"usr/share/doc/slurm-dmtcp/docs/admin.md",
		"usr/share/licenses/slurm-dmtcp-" + proto.Version + "/LICENSE",
	}
	if p := os.Getenv("DMTCP_PREFIX"); p != "" {
		if _, err := os.Stat(filepath.Join(p, "include", "dmtcp.h")); err == nil {
			want = append(want, "usr/libexec/slurm-dmtcp/slurm-dmtcp-sigterm.so")
		}
	}
	for _, w := range want {
		_, err := os.Stat(filepath.Join(root, w))
		assert.NoError(t, err, "%s in %s", w, rpm)
	}
	for _, bin := range []string{"usr/libexec/slurm-dmtcp/slurm-dmtcp-agent", "usr/bin/dmtcpctl", "usr/bin/slurm-dmtcp-nodeprobe"} {
		out, err := exec.Command(filepath.Join(root, bin), "--version").CombinedOutput()
		require.NoError(t, err, "%s --version: %s", bin, out)
		assert.Equal(t, proto.VersionLine(filepath.Base(bin))+"\n", string(out))
	}
}
