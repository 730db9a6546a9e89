//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Debian 12's own 3d Lennard-Jones melt (lammps-examples' in.melt), longer and with its
// thermo lines flushed, so that the test sees the run's progress in the output file.
const lammpsMelt = `units		lj
atom_style	atomic
lattice		fcc 0.8442
region		box block 0 10 0 10 0 10
create_box	1 box
create_atoms	1 box
mass		1 1.0
velocity	all create 3.0 87287 loop geom
pair_style	lj/cut 2.5
pair_coeff	1 1 1.0 1.0 2.5
neighbor	0.3 bin
neigh_modify	every 20 delay 0 check no
fix		1 all nve
thermo		500
thermo_modify	flush yes
run		8000
`

// thermoRE matches LAMMPS's thermo lines (step, temperature, pair energy, molecular
// energy, total energy, pressure).
var thermoRE = regexp.MustCompile(`(?m)^\s+\d+(\s+-?\d\S*){5}\s*$`)

// mpiSumRE matches what testdata/mpi_sum.c prints: one line per step, then the result.
var mpiSumRE = regexp.MustCompile(`(?m)^(step \d+ [0-9a-f]{16}|result .*)$`)

// mpiCase is a one-rank MPI program: how to build it and run it, the line to requeue at,
// and the lines of its output that must match an uninterrupted run exactly.
type mpiCase struct {
	name    string
	needs   []string // programs that must be installed
	install string   // the Debian packages that give them
	build   func(t *testing.T, dir string)
	setup   string // lines of the batch script before the command
	command string // the batch script's command, in the work folder
	at      string // requeue when the output holds this
	first   string // printed once by a run from the top
	figures *regexp.Regexp
}

func lookPaths(progs []string) error {
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			return err
		}
	}
	return nil
}

func mpicc(compiler string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		src, err := os.ReadFile("testdata/mpi_sum.c")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "mpi_sum.c"), src, 0o644))
		out, err := exec.Command("runuser", "-u", testUser, "--", compiler, "-O2", "-Wall", "-Wextra",
			"-o", filepath.Join(dir, "mpi_sum"), filepath.Join(dir, "mpi_sum.c")).CombinedOutput()
		require.NoError(t, err, "%s: %s", compiler, out)
	}
}

// A program linked with MPI runs one rank in a --dmtcp job, is requeued mid-run (Slurm's
// SIGTERM makes generation 1), resumes from that generation and ends with the same figures
// as an uninterrupted run of it outside Slurm and DMTCP: LAMMPS from Debian (Open MPI), and
// a small MPI C program built with Open MPI's and with MPICH's mpicc. Nothing is set in the
// job but --dmtcp (but for one case that overrides the MPI settings the task gets).
func TestMPIOneRankResumes(t *testing.T) {
	c := newCluster(t)
	needDMTCP(t)
	for _, tc := range []mpiCase{
		{name: "lammps", needs: []string{"lmp"}, install: "lammps",
			build: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "in.melt"), []byte(lammpsMelt), 0o644))
			},
			// Step 2000's thermo line: Debian 12's LAMMPS prints "    2000    1.63...",
			// Debian 13's (Feb 2025) "      2000   1.63..." (and its header "   Step
			// Temp" spaced out too: a run from the top is told by "Created 4000 atoms").
			command: "lmp -in in.melt -log none", at: " 2000   ", first: "Created 4000 atoms", figures: thermoRE},
		{name: "openmpi", needs: []string{"mpicc.openmpi"}, install: "openmpi-bin libopenmpi-dev",
			build: mpicc("mpicc.openmpi"), command: "./mpi_sum 30 400", at: "\nstep 8 ", first: "step 1 ", figures: mpiSumRE},
		// The job's own setting wins: Open MPI's orted daemon runs beside the rank, and
		// their shared-memory files, which DMTCP saves beside the images, are restored too.
		// Open MPI 4 only (Debian 12): Open MPI 5 (Debian 13) has no orted and no such
		// setting, its one-rank programs always run without a daemon.
		{name: "openmpi with orted", needs: []string{"mpicc.openmpi", "orted"},
			install: "openmpi-bin libopenmpi-dev of Open MPI 4; Open MPI 5 has no orted",
			build:   mpicc("mpicc.openmpi"), setup: "export OMPI_MCA_ess_singleton_isolated=0\n",
			command: "./mpi_sum 30 400", at: "\nstep 8 ", first: "step 1 ", figures: mpiSumRE},
		{name: "mpich", needs: []string{"mpicc.mpich"}, install: "mpich libmpich-dev",
			build: mpicc("mpicc.mpich"), command: "./mpi_sum 30 400", at: "\nstep 8 ", first: "step 1 ", figures: mpiSumRE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := lookPaths(tc.needs); err != nil {
				t.Skipf("SKIP: %s is not installed (apt-get install %s)", strings.Join(tc.needs, ", "), tc.install)
			}
			dir := workdir(t)
			tc.build(t, dir)

			// The uninterrupted run, outside Slurm and DMTCP, beside the job.
			type run struct {
				out []byte
				err error
			}
			refc := make(chan run, 1)
			go func() {
				cmd := exec.Command("runuser", "-u", testUser, "--", "bash", "-c", "cd "+dir+"\n"+tc.setup+tc.command)
				out, err := cmd.CombinedOutput()
				refc <- run{out, err}
			}()

			script := writeScript(t, dir, "job.sh", "#!/bin/bash\n#SBATCH --open-mode=append\n"+tc.setup+"exec "+tc.command+"\n")
			out, errf := dir+"/out", dir+"/err"
			id := c.sbatch(t, dir, "--dmtcp", "-o", out, "-e", errf, script)
			waitFile(t, out, tc.at, 120*time.Second)
			c.requeue(t, id)
			j := c.waitDone(t, id, 180*time.Second)
			e, _ := os.ReadFile(errf)
			b, _ := os.ReadFile(out)
			require.Equal(t, "COMPLETED", j.State, "error file:\n%s\noutput:\n%s", e, b)
			assert.Contains(t, string(e), "slurm-dmtcp: restart 1: restoring generation 1")
			assert.Regexp(t, `checkpoint \(signal\) generation 1: `, string(e))
			if tc.setup != "" {
				// orted and the rank both map Open MPI's shared-memory files (PMIx's
				// segments); DMTCP saves each once, beside the image of whichever of
				// them it elects, so the files may be in either's folder.
				gen := filepath.Join(homeOf(t, testUser), ".slurm-dmtcp", id, "batch", "gen-*")
				orted, _ := filepath.Glob(filepath.Join(gen, "ckpt_orted_*.dmtcp"))
				assert.NotEmpty(t, orted, "orted ran, and DMTCP checkpointed it with the generation")
				saved, _ := filepath.Glob(filepath.Join(gen, "ckpt_*_files", "*pmix_shared-segment*"))
				assert.NotEmpty(t, saved, "DMTCP saved Open MPI's shared-memory files with the generation")
			}
			assert.NotContains(t, string(e), "ASSERT at", "DMTCP failed an assertion")
			assert.Equal(t, 1, strings.Count(string(b), tc.first), "the program started from the top again:\n%s", b)

			ref := <-refc
			require.NoError(t, ref.err, "uninterrupted run: %s", ref.out)
			want := tc.figures.FindAllString(string(ref.out), -1)
			require.NotEmpty(t, want, "uninterrupted run printed no figures:\n%s", ref.out)
			got := tc.figures.FindAllString(string(b), -1)
			if assert.Equal(t, want, got, "figures of the requeued job differ from the uninterrupted run's") {
				t.Logf("%s: resumed from generation 1, %d lines of figures exact, the last: %s", tc.name, len(got), strings.TrimSpace(got[len(got)-1]))
			}
		})
	}
}
