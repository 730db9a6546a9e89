// Package coordinator finds a DMTCP installation and drives a per-job dmtcp_coordinator:
// start it on a free port, ask its status, request checkpoints, and stop it.
package coordinator

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ConventionalPrefix is where DMTCP is looked for when neither a prefix nor PATH has it.
const ConventionalPrefix = "/opt/dmtcp"

// Install is one DMTCP installation: the absolute paths of the programs slurm-dmtcp runs.
type Install struct {
	Bin         string // folder that holds the programs
	Coordinator string
	Launch      string
	Command     string
	Restart     string
}

var programs = []string{"dmtcp_coordinator", "dmtcp_launch", "dmtcp_command", "dmtcp_restart"}

// Find looks for DMTCP in prefix/bin when prefix is set (and nowhere else then: a configured
// prefix is a promise), else in each folder of pathEnv, else in ConventionalPrefix/bin. The
// error says what is missing and every folder it looked in.
func Find(prefix, pathEnv string) (Install, error) {
	var dirs []string
	if prefix != "" {
		dirs = []string{filepath.Join(prefix, "bin")}
	} else {
		dirs = append(filepath.SplitList(pathEnv), filepath.Join(ConventionalPrefix, "bin"))
	}
	var looked []string
	for _, d := range dirs {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		looked = append(looked, d)
		if inst, ok := complete(d); ok {
			return inst, nil
		}
	}
	where := "plugstack.conf dmtcp_prefix=" + prefix
	if prefix == "" {
		where = "PATH, then " + ConventionalPrefix
	}
	return Install{}, fmt.Errorf("DMTCP not found: no executable %s in %s (searched %s); install DMTCP "+
		"there or set dmtcp_prefix= in plugstack.conf", strings.Join(programs, ", "), strings.Join(looked, ":"), where)
}

func complete(dir string) (Install, bool) {
	for _, p := range programs {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil || st.IsDir() || st.Mode().Perm()&0o111 == 0 {
			return Install{}, false
		}
	}
	return Install{
		Bin:         dir,
		Coordinator: filepath.Join(dir, "dmtcp_coordinator"),
		Launch:      filepath.Join(dir, "dmtcp_launch"),
		Command:     filepath.Join(dir, "dmtcp_command"),
		Restart:     filepath.Join(dir, "dmtcp_restart"),
	}, true
}

var versionRE = regexp.MustCompile(`\(DMTCP\)\s+(\S+)`)

// Version runs dmtcp_launch --version and returns the version it names ("5.0").
func (i Install) Version() (string, error) {
	out, err := exec.Command(i.Launch, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", i.Launch, err, strings.TrimSpace(string(out)))
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version: no version in %q", i.Launch, firstLine(string(out)))
	}
	return string(m[1]), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
