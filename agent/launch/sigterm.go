package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SigtermPlugin is the file name of the DMTCP plugin that DMTCP loads into every process of
// the task (see dmtcpplugin/README.md), installed beside this launcher.
const SigtermPlugin = "slurm-dmtcp-sigterm.so"

// EnvSigterm tells the plugin, in the task's first process, the disposition of SIGTERM that
// the program would have had without slurm-dmtcp. The plugin removes it from the program's
// environment.
const EnvSigterm = "SLURM_DMTCP_SIGTERM"

// envDMTCPPlugin is DMTCP's own list of plugins to load (dmtcp_launch --with-plugin sets it).
const envDMTCPPlugin = "DMTCP_PLUGIN"

// PluginBeside returns the path of SigtermPlugin in the folder of the executable exe, or an
// error naming the path looked at when it is not there.
func PluginBeside(exe string) (string, error) {
	p := filepath.Join(filepath.Dir(exe), SigtermPlugin)
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("the DMTCP plugin %s is missing (%w): the program ignores every SIGTERM; reinstall slurm-dmtcp built with DMTCP_PREFIX set", p, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("the DMTCP plugin %s is not a regular file: the program ignores every SIGTERM; reinstall slurm-dmtcp", p)
	}
	return p, nil
}

// withPlugin returns the dmtcp_launch options and the environment that load plugin into
// the program (with the task's own DMTCP_PLUGIN list after it): the program starts with
// SIGTERM ignored, inherited from the launcher, until the plugin takes over and gives it
// back the default disposition that Slurm's task had.
func withPlugin(plugin string, env []string) ([]string, []string) {
	list := plugin
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, envDMTCPPlugin+"="); ok {
			if v != "" {
				list = plugin + ":" + v
			}
			continue
		}
		out = append(out, kv)
	}
	return []string{"--with-plugin", list}, append(out, EnvSigterm+"=default")
}
