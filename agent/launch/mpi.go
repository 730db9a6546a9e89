package launch

import "strings"

// mpiDefaults are the settings that MPI libraries need to start and be checkpointed under
// DMTCP 5.0, given to a task's program unless its environment sets them already. Only the
// libraries named read them; a program without MPI is not affected.
var mpiDefaults = []struct{ key, value string }{
	// Open MPI: a program started without mpirun (a singleton) runs without the orted
	// daemon it would fork otherwise: one process to checkpoint instead of two, and none of
	// the daemon's TCP listeners, PMIx socket and shared-memory files to restore (its
	// listeners could not bind again after a restore: DMTCP warned "Bind failed"). A
	// singleton then cannot MPI_Comm_spawn; mpirun's processes are not singletons and are
	// not affected.
	{"OMPI_MCA_ess_singleton_isolated", "1"},
	// UCX (MPICH's transport in Debian): its mmap hooks patch shmat() and call syscall(),
	// which DMTCP wraps to call shmat() again: MPI_Init recursed until the stack overflowed.
	{"UCX_MEM_MMAP_HOOK_MODE", "none"},
	// UCX's System V shared memory transport fails DMTCP's SysV id mapping (ASSERT
	// "shmctl virtual id has no real mapping"), and shared memory between processes is
	// not what DMTCP restores: loopback and TCP, which DMTCP's socket plugin restores.
	{"UCX_TLS", "self,tcp"},
	// UCX 1.18 (Debian 13's, which its Open MPI 5 links too) loads its FUSE module from
	// libucs's constructor, and that module starts a thread there: before DMTCP 5.0 has set
	// itself up, so the thread crashed in DMTCP's pthread_create wrapper (a NULL list in
	// removeExitedChildTids), and UCX's SIGSEGV handler then failed DMTCP's ASSERT "initial
	// thread real tid/pid mismatch": every Open MPI and MPICH program, at once. Without
	// UCX's virtual file system (its /run/ucx FUSE mount, for debugging), no such thread.
	{"UCX_VFS_ENABLE", "n"},
}

// withMPIDefaults returns env with every mpiDefaults entry that env does not set appended.
func withMPIDefaults(env []string) []string {
	set := make(map[string]bool, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	for _, d := range mpiDefaults {
		if !set[d.key] {
			env = append(env, d.key+"="+d.value)
		}
	}
	return env
}
