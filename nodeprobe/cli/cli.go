// Package cli is the command line of slurm-dmtcp-nodeprobe: probe, show,
// diff, check and serve. Run is the whole program minus os.Exit, so that
// tests can drive it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

// Exit codes.
const (
	ExitOK           = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitIncompatible = 3
)

// DefaultDB is where the probe keeps its cache.
const DefaultDB = cache.DefaultPath

const usage = `usage: slurm-dmtcp-nodeprobe [flags] COMMAND [flags] [args]

Records the facts of this node that decide whether a DMTCP checkpoint can
be restored here, and compares them with the facts of other nodes.

commands:
  probe [--json]             collect the facts once, record them in the cache,
                             print the class and whether it changed
  show [--json] [--history N]
                             print the latest recorded facts (or N rows of history)
  diff [--json] [--all] A B  compare two facts JSON files (or manifests with
                             "node_facts"); "-" stands for this node's current facts
  check [--json] [--all] MANIFEST
                             can the checkpoint of MANIFEST (a JSON file with a
                             top-level "node_facts" object) be restored here?
  serve [--every 10m] [--publish [--node NAME]]
                             run for systemd: probe now, every interval and on
                             SIGHUP; Type=notify with watchdog; exit on SIGTERM;
                             --publish: publish the class after each probe
  publish [--json] [--node NAME]
                             probe, record, and publish the class as the Slurm node
                             feature dmtcp_<class> of node NAME (default: this host),
                             keeping its other features (root: scontrol update)
  map [--json | --svg] [--facts FILE]...
                             every node's class from Slurm's node data and the groups
                             of nodes a checkpoint can move between; --facts (facts
                             JSON of a class, repeatable) adds moves across classes
                             and what differs; --svg draws it (open it in a browser)

flags (before or after the command):
  --db PATH                  cache database (default ` + DefaultDB + `)
  --dmtcp-prefix DIR         DMTCP install prefix; dmtcp_launch is DIR/bin/dmtcp_launch
                             (default: look up dmtcp_launch in PATH)
  --root DIR                 read /proc, /sys and /etc under DIR (tests, chroots)
  --scontrol PATH            Slurm's scontrol (default: scontrol in PATH; it honours
                             SLURM_CONF)

exit codes: 0 ok or compatible, 1 error, 2 usage error,
            3 incompatible (check) or blocking differences (diff)
`

// env is what the program touches outside its arguments, so that tests can
// replace it.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
	// notifySignals is signal.Notify; it returns the function that stops it.
	notifySignals func(c chan<- os.Signal, sig ...os.Signal) (stop func())
	// sdNotify sends a state to systemd (daemon.SdNotify).
	sdNotify func(state string) (bool, error)
	// watchdog returns the systemd watchdog interval, 0 when disabled.
	watchdog func() (time.Duration, error)
	// journal is nil when journald is not available.
	journal func(msg string, p journal.Priority, vars map[string]string) error
	// scontrol runs Slurm's scontrol at path (nil: the real one, see runner).
	scontrol func(path string) slurm.Runner
	// hostname is this node's host name (nil: os.Hostname).
	hostname func() (string, error)
}

func defaultEnv(stdout, stderr io.Writer) env {
	e := env{
		stdout: stdout,
		stderr: stderr,
		now:    time.Now,
		notifySignals: func(c chan<- os.Signal, sig ...os.Signal) func() {
			signal.Notify(c, sig...)
			return func() { signal.Stop(c) }
		},
		sdNotify: func(state string) (bool, error) { return daemon.SdNotify(false, state) },
		watchdog: func() (time.Duration, error) { return daemon.SdWatchdogEnabled(false) },
	}
	if journal.Enabled() {
		e.journal = journal.Send
	}
	return e
}

// Run runs the program with args (without the program name) and returns
// its exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	return run(context.Background(), args, defaultEnv(stdout, stderr))
}

// common are the flags every command accepts.
type common struct {
	db          string
	dmtcpPrefix string
	root        string
	scontrol    string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.db, "db", c.db, "cache database `PATH`")
	fs.StringVar(&c.dmtcpPrefix, "dmtcp-prefix", c.dmtcpPrefix, "DMTCP install prefix `DIR`")
	fs.StringVar(&c.root, "root", c.root, "read /proc, /sys and /etc under `DIR`")
	fs.StringVar(&c.scontrol, "scontrol", c.scontrol, "Slurm's scontrol `PATH`")
}

func (c common) factOptions(now func() time.Time) facts.Options {
	return facts.Options{Root: c.root, DMTCPPrefix: c.dmtcpPrefix, Now: now}
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit code other than 0, 1 and 2 (e.g. 3).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func run(ctx context.Context, args []string, e env) int {
	g := common{db: DefaultDB, scontrol: "scontrol"}
	global := newFlagSet("slurm-dmtcp-nodeprobe")
	g.register(global)
	if err := global.Parse(args); err != nil {
		return usageExit(e, err)
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprint(e.stderr, usage)
		return ExitUsage
	}
	cmd, cmdArgs := rest[0], rest[1:]
	var err error
	switch cmd {
	case "help":
		fmt.Fprint(e.stdout, usage)
		return ExitOK
	case "probe":
		err = cmdProbe(cmdArgs, g, e)
	case "show":
		err = cmdShow(cmdArgs, g, e)
	case "diff":
		err = cmdDiff(cmdArgs, g, e)
	case "check":
		err = cmdCheck(cmdArgs, g, e)
	case "serve":
		err = cmdServe(ctx, cmdArgs, g, e)
	case "publish":
		err = cmdPublish(ctx, cmdArgs, g, e)
	case "map":
		err = cmdMap(ctx, cmdArgs, g, e)
	default:
		err = usagef("unknown command %q: want one of probe, show, diff, check, serve, publish, map, help", cmd)
	}
	return exitCode(e, err)
}

func exitCode(e env, err error) int {
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(e.stdout, usage)
		return ExitOK
	case errors.As(err, &ue):
		return usageExit(e, err)
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(e.stderr, "slurm-dmtcp-nodeprobe: %v\n", err)
		return ExitError
	}
}

func usageExit(e env, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(e.stderr, "slurm-dmtcp-nodeprobe: %v\nRun 'slurm-dmtcp-nodeprobe help' for usage.\n", err)
	return ExitUsage
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by usageExit
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags placed before, between or after the
// positional arguments, and returns the positional ones. "--" ends flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, pos []string, n int, forms string) error {
	if len(pos) != n {
		return usagef("%s: want %d argument(s), got %d (%s); usage: %s", cmd, n, len(pos), quoteAll(pos), forms)
	}
	return nil
}

func quoteAll(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, " ")
}
