package proto

import "fmt"

// Version is slurm-dmtcp's release: printed by every binary's --version and by the plugin
// when Slurm loads it (the Makefile reads it from here for the C part). The Python
// package (contrib/python/pyproject.toml) repeats it; its install test checks they agree.
const Version = "0.4.0"

// VersionLine is what `--version` prints for the program name.
func VersionLine(name string) string {
	return fmt.Sprintf("%s %s (ready protocol %s)", name, Version, ReadyHeader[:len("sdmtcp/1")])
}

// AskedVersion tells whether args is exactly ["--version"].
func AskedVersion(args []string) bool {
	return len(args) == 1 && args[0] == "--version"
}
