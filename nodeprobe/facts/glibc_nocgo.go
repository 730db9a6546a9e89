//go:build !cgo || !linux

package facts

// runtimeGlibcVersion is unavailable without cgo; callers fall back to
// reading libc.so.6 or running ldd.
func runtimeGlibcVersion() (string, bool) { return "", false }
