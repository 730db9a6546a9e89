package agent

import (
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

// NewLogger logs to w (the step's agent.log) and, where journald listens, to the journal
// with the entry's fields as journal fields (JOB_ID, STEP, USER, ...).
func NewLogger(w io.Writer, fields logrus.Fields) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(w)
	l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	if journal.Enabled() {
		l.AddHook(journalHook{})
	}
	return l.WithFields(fields)
}

type journalHook struct{}

func (journalHook) Levels() []logrus.Level { return logrus.AllLevels }

func (journalHook) Fire(e *logrus.Entry) error {
	prio := journal.PriInfo
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel:
		prio = journal.PriCrit
	case logrus.ErrorLevel:
		prio = journal.PriErr
	case logrus.WarnLevel:
		prio = journal.PriWarning
	case logrus.DebugLevel, logrus.TraceLevel:
		prio = journal.PriDebug
	}
	vars := map[string]string{"SYSLOG_IDENTIFIER": "slurm-dmtcp-agent"}
	for k, v := range e.Data {
		vars[strings.ToUpper(k)] = fmt.Sprint(v)
	}
	return journal.Send(e.Message, prio, vars)
}
