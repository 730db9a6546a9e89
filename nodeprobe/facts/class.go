package facts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// classEncodingVersion is part of the hashed text, so that a change of the
// canonical encoding gives new class ids rather than colliding with old ones.
const classEncodingVersion = "nodeprobe-class-v1"

// CanonicalClass is the text Class hashes: one "key=value" line per fact
// that matters for restoring a checkpoint, in a fixed order. Hostname, time,
// CPU model details, OS release and notes are left out.
func CanonicalClass(f Facts) string {
	lines := []string{
		classEncodingVersion,
		"arch=" + f.Arch,
		"cpu_vendor=" + f.CPUVendor,
		fmt.Sprintf("x86_64_level=%d", f.X86Level),
		"feature_families=" + strings.Join(f.FeatureFamilies, ","),
		"kernel_release=" + f.KernelRelease,
		fmt.Sprintf("vdso_size=%d", f.VDSOSize),
		fmt.Sprintf("vvar_size=%d", f.VVARSize),
		"glibc_version=" + f.GlibcVersion,
		"dmtcp_version=" + f.DMTCPVersion,
		fmt.Sprintf("page_size=%d", f.PageSize),
	}
	return strings.Join(lines, "\n") + "\n"
}

// Class returns a short stable id of the restore-relevant facts:
// "c-" and the first 10 hex digits of the SHA-256 of CanonicalClass. Two
// nodes of one class can restore each other's checkpoints as far as these
// facts can tell.
func Class(f Facts) string {
	sum := sha256.Sum256([]byte(CanonicalClass(f)))
	return "c-" + hex.EncodeToString(sum[:])[:10]
}
