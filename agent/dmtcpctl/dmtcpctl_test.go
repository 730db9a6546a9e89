package dmtcpctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ctlsrv "github.com/slurm-dmtcp/slurm-dmtcp/agent/control"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
	ctl "github.com/slurm-dmtcp/slurm-dmtcp/proto/control"
)

// backend answers like an agent with one generation; checkpoints finish at once unless
// hold is set.
type backend struct {
	hold     bool
	interval time.Duration
	tickets  map[uint64]*ctlsrv.Ticket
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (b *backend) Hello() ctl.Hello {
	return ctl.Hello{Protocol: 1, JobID: "42", Step: "batch", AgentPID: 9}
}
func (b *backend) Status(context.Context) (ctl.Status, error) {
	g, _ := b.Generations()
	next := t0.Add(time.Hour)
	return ctl.Status{Hello: b.Hello(), State: ctl.StateRunning, Coordinator: ctl.Coordinator{Host: "n1", Port: 4000},
		Processes: 3, IntervalS: 3600, MinIntervalS: 60, NextCheckpoint: &next, StepDir: "/h/.slurm-dmtcp/42/batch", Generations: g}, nil
}
func (b *backend) Generations() (ctl.Generations, error) {
	return ctl.Generations{Keep: 2, Generations: []ctl.Generation{{Number: 3, Time: t0, Bytes: 3 << 20, Reason: "periodic", Path: "/h/gen-000003"}}}, nil
}
func (b *backend) SetInterval(d time.Duration) (ctl.IntervalResult, error) {
	if d > 0 && d < time.Minute {
		return ctl.IntervalResult{}, ctl.Errorf(ctl.CodePolicy, "interval %s is shorter than the site's min_interval 60s", d)
	}
	b.interval = d
	return ctl.IntervalResult{OldS: 3600, IntervalS: int64(d / time.Second)}, nil
}
func (b *backend) RequestCheckpoint() (*ctlsrv.Ticket, error) {
	t := ctlsrv.NewTicket(uint64(len(b.tickets) + 1))
	b.tickets[t.ID()] = t
	if !b.hold {
		t.Finish(ctl.CheckpointResult{State: ctl.TicketDone, Generation: 4, Bytes: 5 << 20, Path: "/h/gen-000004", DurationS: 1.5})
	}
	return t, nil
}
func (b *backend) StartCheckpoints() {}
func (b *backend) Ticket(id uint64) (*ctlsrv.Ticket, bool) {
	t, ok := b.tickets[id]
	return t, ok
}

func serve(t *testing.T, b *backend, check func(ctlsrv.Cred) error) string {
	dir, err := os.MkdirTemp("", "ctl")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "s")
	ln, err := ctlsrv.Listen(p)
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	s := &ctlsrv.Server{Backend: b, Log: logrus.NewEntry(l), Check: check}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Close)
	return p
}

func runCtl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: func() time.Time { return t0 }})
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	sock := serve(t, &backend{tickets: map[uint64]*ctlsrv.Ticket{}}, nil)
	for _, tc := range []struct {
		args []string
		code int
		out  []string
		err  string
	}{
		{[]string{"status"}, ExitOK, []string{"job 42 step batch (restart 0): running", "n1:4000, processes under DMTCP: 3",
			"interval:        1h0m0s (site minimum 1m0s)", "(in 1h0m0s)", "3  2026-01-02", "periodic", "3.0 MiB"}, ""},
		{[]string{"generations"}, ExitOK, []string{"keep 2", "/h/gen-000003"}, ""},
		{[]string{"ping"}, ExitOK, []string{"job 42 step batch: agent pid 9, protocol 1, restart 0"}, ""},
		{[]string{"checkpoint"}, ExitOK, []string{"checkpoint done: generation 4, 5.0 MiB, 1.5s (ticket 1)"}, ""},
		{[]string{"checkpoint", "--timeout", "10m"}, ExitOK, []string{"generation 4"}, ""},
		{[]string{"wait", "1"}, ExitOK, []string{"generation 4"}, ""},
		{[]string{"wait", "77"}, ExitFailed, nil, "not_found: no checkpoint ticket 77"},
		{[]string{"interval", "30m"}, ExitOK, []string{"interval 30m0s (was 1h0m0s)"}, ""},
		{[]string{"interval", "10"}, ExitFailed, nil, "policy: interval 10s is shorter"},
		{[]string{"interval", "soon"}, ExitUsage, nil, "90s, 30m"},
		{[]string{"wait", "x"}, ExitUsage, nil, "want a ticket number"},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			code, out, errs := runCtl(append([]string{"--socket", sock}, tc.args...)...)
			assert.Equal(t, tc.code, code, "stdout %q stderr %q", out, errs)
			for _, o := range tc.out {
				assert.Contains(t, out, o)
			}
			assert.Contains(t, errs, tc.err)
		})
	}
}

func TestJSONOutput(t *testing.T) {
	sock := serve(t, &backend{tickets: map[uint64]*ctlsrv.Ticket{}}, nil)
	code, out, _ := runCtl("status", "--json", "--socket", sock) // flags after the command too
	require.Equal(t, ExitOK, code)
	var st ctl.Status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, 3, st.Processes)
	assert.Equal(t, "42", st.JobID)

	code, out, _ = runCtl("--json", "--socket", sock, "interval", "5")
	assert.Equal(t, ExitFailed, code)
	var e struct{ Error ctl.Error }
	require.NoError(t, json.Unmarshal([]byte(out), &e))
	assert.Equal(t, ctl.CodePolicy, e.Error.Code)
}

func TestTimeoutAndNoWait(t *testing.T) {
	sock := serve(t, &backend{hold: true, tickets: map[uint64]*ctlsrv.Ticket{}}, nil)
	code, out, _ := runCtl("--socket", sock, "checkpoint", "--no-wait")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out, "checkpoint queued: ticket 1 (dmtcpctl wait 1 waits for it)")
	code, _, errs := runCtl("--socket", sock, "checkpoint", "--timeout", "1s")
	assert.Equal(t, ExitTimeout, code)
	assert.Contains(t, errs, "dmtcpctl wait 2")
}

func TestForbiddenAndUnreachable(t *testing.T) {
	sock := serve(t, &backend{tickets: map[uint64]*ctlsrv.Ticket{}}, func(ctlsrv.Cred) error { return fmt.Errorf("process 1 belongs to job 7") })
	code, _, errs := runCtl("--socket", sock, "status")
	assert.Equal(t, ExitForbidden, code)
	assert.Contains(t, errs, "forbidden: process 1 belongs to job 7")

	code, _, errs = runCtl("--socket", "/nonexistent/s", "status")
	assert.Equal(t, ExitNoAgent, code)
	assert.Contains(t, errs, "connect to the agent at /nonexistent/s")

	code, _, errs = runCtl("status")
	assert.Equal(t, ExitNoAgent, code)
	assert.Contains(t, errs, "SLURM_DMTCP_CONTROL_SOCKET is not set")
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "no command"},
		{[]string{"reboot"}, `unknown command "reboot"`},
		{[]string{"interval"}, "interval takes 1 argument(s), got 0"},
		{[]string{"status", "extra"}, "status takes 0 argument(s), got 1"},
		{[]string{"--job", "abc", "status"}, `--job "abc": want a job number`},
		{[]string{"--job", "1", "--socket", "/s", "status"}, "exclude each other"},
		{[]string{"--timeout", "2x", "checkpoint"}, "unit 'x'"},
		{[]string{"--timeout", "30d", "checkpoint"}, "at most"},
		{[]string{"--bogus", "status"}, "flag provided but not defined: -bogus"},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			code, _, errs := runCtl(tc.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, errs, tc.err)
			assert.Contains(t, errs, "usage: dmtcpctl")
		})
	}
	code, out, _ := runCtl("--help")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, out, "Exit codes")
}

func TestJobGoesThroughSrun(t *testing.T) {
	var gotArgs, gotEnv []string
	t.Setenv("LD_PRELOAD", "/opt/dmtcp/lib/dmtcp/libdmtcp.so")
	t.Setenv("SLURM_DMTCP_COORD_PORT", "4000")
	var out, errb bytes.Buffer
	code := Main([]string{"--job", "42", "--json", "checkpoint", "--no-wait"}, Env{Stdout: &out, Stderr: &errb, Getenv: os.Getenv,
		Executable: "/usr/local/bin/dmtcpctl",
		JobInfo: func(context.Context, string) (slurm.Record, error) {
			return slurm.Record{"BatchHost": "node7"}, nil
		},
		Srun: func(_ context.Context, args, env []string) (int, error) {
			gotArgs, gotEnv = args, env
			return 4, nil
		}})
	assert.Equal(t, 4, code, "srun's exit code is dmtcpctl's")
	assert.Equal(t, []string{"--overlap", "--jobid", "42", "-N1", "-n1", "--quiet", "--dmtcp=off", "-w", "node7",
		"/usr/local/bin/dmtcpctl", "--inside-job", "--job", "42", "--json", "checkpoint", "--no-wait"}, gotArgs)
	for _, kv := range gotEnv {
		assert.NotRegexp(t, `^(LD_PRELOAD|DMTCP_|SLURM_DMTCP_)`, kv, "srun must not run under DMTCP")
	}
}

func TestFindSocket(t *testing.T) {
	rt := t.TempDir()
	base := filepath.Join(rt, fmt.Sprintf("slurm-dmtcp-%d", os.Getuid()))
	mk := func(step string) string {
		d := filepath.Join(base, "42."+step)
		require.NoError(t, os.MkdirAll(d, 0o700))
		p := filepath.Join(d, ctl.SocketName)
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		return p
	}
	_, err := findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
	assert.ErrorContains(t, err, "no control socket of job 42 on this node")
	s3 := mk("step-3")
	p, err := findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
	require.NoError(t, err)
	assert.Equal(t, s3, p, "the only step")
	mk("step-4")
	_, err = findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
	assert.ErrorContains(t, err, "choose one with --step N")
	p, err = findSocket(opts{job: "42", runtimeDir: rt, step: "3"}, Env{Getenv: os.Getenv})
	require.NoError(t, err)
	assert.Equal(t, s3, p)
	b := mk("batch")
	p, err = findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
	require.NoError(t, err)
	assert.Equal(t, b, p, "the batch step first")
}

// The agent passes over a runtime folder that another user planted and uses
// slurm-dmtcp-<uid>.<suffix>: dmtcpctl finds the socket there, and never through a link.
func TestFindSocketPlanted(t *testing.T) {
	name := fmt.Sprintf("slurm-dmtcp-%d", os.Getuid())
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, rt string) // at rt/name
		found bool
	}{
		{"a link at the usual name", func(t *testing.T, rt string) {
			require.NoError(t, os.Symlink(filepath.Join(rt, "decoy"), filepath.Join(rt, name)))
		}, true},
		{"a file at the usual name", func(t *testing.T, rt string) {
			require.NoError(t, os.WriteFile(filepath.Join(rt, name), nil, 0o644))
		}, true},
		{"a folder of another user at the usual name", func(t *testing.T, rt string) {
			if os.Geteuid() != 0 {
				t.Skip("SKIP: giving a folder to another user needs root")
			}
			require.NoError(t, os.Mkdir(filepath.Join(rt, name), 0o777))
			require.NoError(t, os.Chown(filepath.Join(rt, name), 54321, 54321))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := t.TempDir()
			// A decoy socket where the planted name leads: never taken.
			require.NoError(t, os.MkdirAll(filepath.Join(rt, "decoy", "42.batch"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(rt, "decoy", "42.batch", ctl.SocketName), nil, 0o600))
			tc.plant(t, rt)
			_, err := findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
			assert.ErrorContains(t, err, "no control socket of job 42", "nothing through what was planted")
			d := filepath.Join(rt, name+".Ab3dE9xYz1", "42.batch")
			require.NoError(t, os.MkdirAll(d, 0o700))
			want := filepath.Join(d, ctl.SocketName)
			require.NoError(t, os.WriteFile(want, nil, 0o600))
			p, err := findSocket(opts{job: "42", runtimeDir: rt}, Env{Getenv: os.Getenv})
			require.NoError(t, err)
			assert.Equal(t, want, p)
		})
	}
}

func TestRuntimeDirFromPlugstack(t *testing.T) {
	for _, tc := range []struct {
		name, plugstack, want string
	}{
		{"the plugin's line, not a comment", "# required /x/spank_dmtcp.so runtime_dir=/old\nrequired /x/spank_dmtcp.so dmtcp_prefix=/opt/dmtcp runtime_dir=/scratch/run\n", "/scratch/run"},
		{"given twice: the last one wins, as in the plugin", "required /x/spank_dmtcp.so runtime_dir=/first dmtcp_prefix=/opt/dmtcp runtime_dir=/second\n", "/second"},
		{"not given", "required /x/spank_dmtcp.so dmtcp_prefix=/opt/dmtcp\n", "/tmp"},
		{"a relative folder (the plugin refuses it)", "required /x/spank_dmtcp.so runtime_dir=/abs runtime_dir=rel\n", "/tmp"},
		{"another plugin's line", "required /x/other.so runtime_dir=/elsewhere\n", "/tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			conf := filepath.Join(d, "slurm.conf")
			plug := filepath.Join(d, "ps.conf")
			require.NoError(t, os.WriteFile(conf, []byte("ClusterName=x\nPlugStackConfig="+plug+"\n"), 0o644))
			require.NoError(t, os.WriteFile(plug, []byte(tc.plugstack), 0o644))
			assert.Equal(t, tc.want, runtimeDirFromPlugstack(conf))
		})
	}
	assert.Equal(t, "/tmp", runtimeDirFromPlugstack(filepath.Join(t.TempDir(), "missing.conf")), "no slurm.conf")
}
