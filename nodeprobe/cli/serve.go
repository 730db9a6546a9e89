package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"

	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/cache"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/facts"
	"github.com/slurm-dmtcp/slurm-dmtcp/nodeprobe/slurm"
)

func cmdServe(ctx context.Context, args []string, c common, e env) error {
	fs := newFlagSet("serve")
	c.register(fs)
	every := fs.Duration("every", 10*time.Minute, "re-probe every `INTERVAL` (e.g. 10m, 1h)")
	publish := fs.Bool("publish", false, "publish the class as a Slurm node feature after each probe")
	nodeFlag := fs.String("node", "", "Slurm NodeName of this node for --publish (default: the short host name)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("serve", pos, 0, "serve [--every 10m] [--publish [--node NAME]]"); err != nil {
		return err
	}
	if *every < time.Second {
		return usagef("serve: --every %s: want an interval of at least 1s, such as 30s, 10m or 1h", *every)
	}
	if *nodeFlag != "" && !*publish {
		return usagef("serve: --node %s is only used with --publish", *nodeFlag)
	}
	node := ""
	if *publish {
		if node, err = e.nodeName(*nodeFlag); err != nil {
			return err
		}
	}
	return serve(ctx, c, *every, node, e)
}

// publishRetry is how soon serve tries again after a failed publication (slurmctld down or
// not up yet at boot), when that is sooner than the next probe.
const publishRetry = 30 * time.Second

func newLogger(e env) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(e.stderr)
	log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: e.journal != nil, FullTimestamp: true})
	if e.journal != nil {
		// journald stores the message with its fields; stderr would only
		// duplicate it in the journal.
		log.AddHook(journalHook{send: e.journal})
		log.SetOutput(io.Discard)
	}
	return log
}

// serve probes at start, on every tick and on SIGHUP, and stops cleanly on
// SIGTERM or SIGINT. It speaks the systemd notify protocol: READY=1 after
// the first probe, RELOADING=1 around a SIGHUP probe, WATCHDOG=1 at half
// the watchdog interval and STOPPING=1 on exit. With node set, it publishes the class as a
// Slurm node feature after each probe; a failed publication is logged and retried.
func serve(ctx context.Context, c common, every time.Duration, node string, e env) error {
	log := newLogger(e)
	notify := func(state string) {
		if _, err := e.sdNotify(state); err != nil {
			log.WithError(err).WithField("state", firstLineOf(state)).Warn("systemd notify failed")
		}
	}
	sigs := make(chan os.Signal, 4)
	stopSignals := e.notifySignals(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()

	db, movedTo, err := cache.OpenOrRecover(c.db, e.now())
	if err != nil {
		log.WithError(err).Error("cannot open the facts cache")
		return err
	}
	defer db.Close()
	if movedTo != "" {
		log.WithFields(logrus.Fields{"db": c.db, "moved_to": movedTo}).Warn("facts cache was corrupt; moved it aside and started a fresh one")
	}

	var retry *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	publishClass := func(class, reason string) {
		if node == "" {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, scontrolTimeout)
		p, err := slurm.Publish(pctx, e.runner(c.scontrol), node, class)
		cancel()
		if err != nil {
			wait := min(publishRetry, every)
			log.WithError(err).WithFields(logrus.Fields{"node": node, "class": class, "reason": reason,
				"retry_in": wait.String()}).Warn("publishing the class as a Slurm node feature failed")
			if retry == nil {
				retry = time.NewTimer(wait)
			} else {
				retry.Reset(wait)
			}
			retryC = retry.C
			return
		}
		retryC = nil
		entry := log.WithFields(logrus.Fields{"node": p.Node, "feature": p.Feature, "changed": p.Changed, "reason": reason})
		if len(p.Removed) > 0 {
			entry = entry.WithField("replaced", strings.Join(p.Removed, ","))
		}
		if p.Changed {
			entry.Info("class published as a Slurm node feature")
		} else {
			entry.Debug("class already published")
		}
	}
	lastClass := ""

	probe := func(reason string) {
		f, err := facts.Collect(c.factOptions(e.now))
		if err != nil {
			log.WithError(err).WithField("reason", reason).Error("probe failed")
			return
		}
		defer func() { lastClass = facts.Class(f); publishClass(lastClass, reason) }()
		changed, err := db.Record(f, e.now())
		if err != nil {
			log.WithError(err).WithField("reason", reason).Error("recording facts failed")
			return
		}
		entry := log.WithFields(logrus.Fields{"reason": reason, "class": facts.Class(f), "changed": changed,
			"kernel": f.KernelRelease, "glibc": f.GlibcVersion, "dmtcp": f.DMTCPVersion, "vdso_size": f.VDSOSize})
		for _, n := range f.Notes {
			entry.WithField("note", n).Debug("fact not available")
		}
		if changed {
			entry.Info("node facts changed")
		} else {
			entry.Info("node facts unchanged")
		}
	}

	probe("start")
	notify(daemon.SdNotifyReady)
	log.WithFields(logrus.Fields{"db": c.db, "every": every.String()}).Info("serving")

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var watchdogC <-chan time.Time
	if wd, err := e.watchdog(); err != nil {
		log.WithError(err).Warn("cannot read the systemd watchdog settings")
	} else if wd > 0 {
		t := time.NewTicker(wd / 2)
		defer t.Stop()
		watchdogC = t.C
		notify(daemon.SdNotifyWatchdog)
	}

	for {
		select {
		case <-ctx.Done():
			notify(daemon.SdNotifyStopping)
			log.Info("stopping: context done")
			return nil
		case <-ticker.C:
			probe("timer")
		case <-watchdogC:
			notify(daemon.SdNotifyWatchdog)
		case <-retryC:
			publishClass(lastClass, "retry")
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
				probe("SIGHUP")
				notify(daemon.SdNotifyReady)
			default:
				notify(daemon.SdNotifyStopping)
				log.WithField("signal", s.String()).Info("stopping")
				return nil
			}
		}
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// journalHook sends each log entry to journald with its fields.
type journalHook struct {
	send func(msg string, p journal.Priority, vars map[string]string) error
}

func (journalHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h journalHook) Fire(entry *logrus.Entry) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "slurm-dmtcp-nodeprobe"}
	for k, v := range entry.Data {
		if name := journalField(k); name != "" {
			vars[name] = fmt.Sprint(v)
		}
	}
	if err := h.send(entry.Message, journalPriority(entry.Level), vars); err != nil {
		return fmt.Errorf("send to journald: %w", err)
	}
	return nil
}

// journalField turns a logrus field name into a journald one: upper case
// letters, digits and underscores, not starting with an underscore.
func journalField(k string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(k) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return strings.TrimLeft(b.String(), "_0123456789")
}

func journalPriority(l logrus.Level) journal.Priority {
	switch l {
	case logrus.PanicLevel:
		return journal.PriEmerg
	case logrus.FatalLevel:
		return journal.PriCrit
	case logrus.ErrorLevel:
		return journal.PriErr
	case logrus.WarnLevel:
		return journal.PriWarning
	case logrus.InfoLevel:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}
