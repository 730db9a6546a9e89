package proto

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strings"
)

// ExpandCheckpointDir fills a checkpoint folder template (plugstack.conf checkpoint_dir=, the
// job's folder): %u user name, %U uid, %j job id, %h home folder, %% a percent sign. The result
// must be an absolute path.
func ExpandCheckpointDir(tmpl string, u *user.User, jobID string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			b.WriteByte(tmpl[i])
			continue
		}
		if i+1 == len(tmpl) {
			return "", fmt.Errorf("checkpoint_dir %q: lone %% at the end; use %%%% for a percent sign", tmpl)
		}
		i++
		switch tmpl[i] {
		case 'u':
			b.WriteString(u.Username)
		case 'U':
			b.WriteString(u.Uid)
		case 'j':
			b.WriteString(jobID)
		case 'h':
			b.WriteString(u.HomeDir)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("checkpoint_dir %q: unknown %%%c; known: %%u %%U %%j %%h %%%%", tmpl, tmpl[i])
		}
	}
	p := b.String()
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("checkpoint_dir %q expands to %q, not an absolute path", tmpl, p)
	}
	return filepath.Clean(p), nil
}
