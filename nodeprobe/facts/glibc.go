package facts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// libcPatterns are where libc.so.6 lives on common distributions.
var libcPatterns = []string{
	"lib/*-linux-gnu*/libc.so.6", "usr/lib/*-linux-gnu*/libc.so.6",
	"lib64/libc.so.6", "usr/lib64/libc.so.6", "lib/libc.so.6", "usr/lib/libc.so.6",
}

// libcBanner matches the banner compiled into libc.so.6, e.g. "GNU C
// Library (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36.".
var libcBanner = regexp.MustCompile(`GNU C Library[^\n\x00]*? version (\d+\.\d+(?:\.\d+)?)`)

// lddVersion matches the first line of `ldd --version`, e.g.
// "ldd (Debian GLIBC 2.36-9+deb12u14) 2.36".
var lddVersion = regexp.MustCompile(`^ldd \(.*\) (\d+\.\d+(?:\.\d+)?)`)

// glibcVersion returns the glibc version: on the real root the one this
// process runs with (gnu_get_libc_version when built with cgo), else the
// banner of libc.so.6 in the tree, else `ldd --version` on the real root.
func glibcVersion(opts Options) (string, error) {
	if opts.realRoot() {
		if v, ok := runtimeGlibcVersion(); ok {
			return v, nil
		}
	}
	v, fileErr := glibcFromFile(opts.root())
	if fileErr == nil {
		return v, nil
	}
	if !opts.realRoot() {
		return "", fileErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout())
	defer cancel()
	out, err := exec.CommandContext(ctx, "ldd", "--version").Output()
	if err != nil {
		return "", errors.Join(fileErr, fmt.Errorf("ldd --version: %w", err))
	}
	if m := lddVersion.FindSubmatch(out); m != nil {
		return string(m[1]), nil
	}
	return "", errors.Join(fileErr, fmt.Errorf("ldd --version: no version in %q", firstLine(out)))
}

func glibcFromFile(root string) (string, error) {
	for _, pat := range libcPatterns {
		matches, _ := filepath.Glob(filepath.Join(root, pat))
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				return "", fmt.Errorf("read %s: %w", m, err)
			}
			if sub := libcBanner.FindSubmatch(b); sub != nil {
				return string(sub[1]), nil
			}
			return "", fmt.Errorf("%s: no GNU C Library version banner", m)
		}
	}
	return "", fmt.Errorf("no libc.so.6 under %s", root)
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
