package facts

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// dmtcpVersionRe matches "dmtcp_launch (DMTCP) 3.0.0" and similar banners.
var dmtcpVersionRe = regexp.MustCompile(`\(DMTCP\)\s+v?(\d+\.\d+(?:\.\d+)?[0-9A-Za-z.+~-]*)`)

// anyVersionRe is the fallback: the first dotted version on a line that
// mentions DMTCP.
var anyVersionRe = regexp.MustCompile(`\b(\d+\.\d+(?:\.\d+)?[0-9A-Za-z.+~-]*)`)

// ParseDMTCPVersion extracts the version from `dmtcp_launch --version`.
func ParseDMTCPVersion(out string) (string, error) {
	if m := dmtcpVersionRe.FindStringSubmatch(out); m != nil {
		return m[1], nil
	}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(strings.ToLower(line), "dmtcp") {
			continue
		}
		if m := anyVersionRe.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no DMTCP version in %q", firstLine([]byte(out)))
}

// dmtcpVersion finds dmtcp_launch (in DMTCPPrefix/bin, else in PATH) and
// runs it with --version. It returns the path it ran (empty when absent).
func dmtcpVersion(opts Options) (launch, version string, err error) {
	if opts.DMTCPPrefix != "" {
		launch = filepath.Join(opts.DMTCPPrefix, "bin", "dmtcp_launch")
		launch, err = exec.LookPath(launch)
		if err != nil {
			return "", "", fmt.Errorf("not installed under prefix %s: %w", opts.DMTCPPrefix, err)
		}
	} else {
		launch, err = exec.LookPath("dmtcp_launch")
		if err != nil {
			return "", "", fmt.Errorf("dmtcp_launch not found in PATH (give the DMTCP prefix): %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout())
	defer cancel()
	out, runErr := exec.CommandContext(ctx, launch, "--version").CombinedOutput()
	v, parseErr := ParseDMTCPVersion(string(out))
	if parseErr == nil {
		// Some releases exit non-zero after printing the version.
		return launch, v, nil
	}
	if runErr != nil {
		return launch, "", fmt.Errorf("%s --version: %w", launch, errors.Join(runErr, parseErr))
	}
	return launch, "", fmt.Errorf("%s --version: %w", launch, parseErr)
}
