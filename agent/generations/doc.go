// Package generations keeps the completed checkpoints of one Slurm job as
// numbered, immutable, verified generation folders, so that a restart never
// sees a half-written checkpoint.
//
// # Layout
//
// A Store is rooted at the job's checkpoint folder (mode 0700, owned by the
// current user, not a symlink):
//
//	<root>/.lock                  flock held by the one agent using the Store
//	<root>/.current/              DMTCP's --ckptdir: images of the checkpoint in progress
//	<root>/.staging-8-1234567/    generation 8 being committed (never a generation)
//	<root>/gen-000006/            committed generations: images + MANIFEST.json
//	<root>/gen-000007/
//
// There is no "latest" link: the newest generation is found by scanning the
// gen-NNNNNN folders (number zero-padded to six digits) and verifying them
// from newest to oldest (Store.NewestVerified). Numbers only grow; a number
// is never reused for different content.
//
// # Design: DMTCP writes into a fixed folder, the agent moves
//
// DMTCP's processes keep the --ckptdir they were launched with for their
// whole life, so the agent cannot hand each checkpoint a fresh folder. The
// job is therefore launched with --ckptdir <root>/.current (Store.CurrentDir)
// and every completed checkpoint is turned into a generation in three steps:
//
//	p, err := store.Begin()                    // reserve number N, create .staging-N-*
//	c, err := p.CommitFrom(store.CurrentDir(), meta)
//	log.Infof("%s", c)                         // "generation 3: 512 MiB in 2.1 s (243 MiB/s)"
//
// CommitFrom is MoveFrom followed by Commit. MoveFrom moves DMTCP's files
// (ckpt_*.dmtcp, ckpt_*_files/, dmtcp_restart_script*.sh) out of the source
// folder by rename, which is atomic and free on the same file system; across
// file systems (a node-local --ckptdir) it copies, fsyncs and only then
// removes the source. It refuses to move while DMTCP is still writing
// (a *.temp file is present). The dmtcp_restart_script.sh symlink is dropped:
// generations hold regular files only. A caller whose DMTCP writes straight
// into Pending.Dir can skip MoveFrom and call Commit.
//
// Commit hashes and fsyncs every file, writes MANIFEST.json (temporary file,
// fsync, rename), fsyncs the staging folder, renames it to gen-NNNNNN and
// fsyncs the root. A crash at any point leaves either no generation N or a
// complete one; leftover .staging-* and .deleting-* folders are removed by
// the next Open. Commit then verifies the new generation by re-reading it
// (the page cache of each file is dropped after fsync so the read comes
// from storage where the file system allows), and only then prunes older
// generations so that the newest Options.Keep verified generations remain.
// A failed Commit removes its staging folder, leaves every older generation
// untouched and returns an error that says which step failed.
//
// # Concurrency
//
// One agent uses a root at a time: Open takes an exclusive, non-blocking
// flock on <root>/.lock and fails with ErrLocked otherwise. Within a process
// the methods of Store are safe for concurrent use; commits are serialised.
//
// The library does not log; it returns what happened (Committed, Skipped,
// Store.StaleRemoved) for the agent to log.
package generations
