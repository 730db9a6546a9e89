//go:build cgo && linux

package facts

/*
#include <gnu/libc-version.h>
*/
import "C"

// runtimeGlibcVersion asks the glibc this process is linked with.
func runtimeGlibcVersion() (string, bool) {
	return C.GoString(C.gnu_get_libc_version()), true
}
