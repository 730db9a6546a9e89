#!/bin/bash
# On a preemptible partition: when a higher-priority job needs the node, Slurm requeues
# this one (PreemptMode=REQUEUE). slurm-dmtcp checkpoints on Slurm's SIGTERM, and the next
# run resumes from that checkpoint, the sweep's progress included. Keep the output file
# open in append mode so it continues.
#SBATCH --job-name=sweep-low
#SBATCH --partition=low
#SBATCH --dmtcp
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=sweep-%j.out
export PYTHONPATH=${SLURM_DMTCP_PYTHON:-/usr/local/share/slurm-dmtcp/python}${PYTHONPATH:+:$PYTHONPATH}
echo "run $(( ${SLURM_RESTART_COUNT:-0} + 1 )) of job $SLURM_JOB_ID"   # printed once: later runs are restores
python3 sweep.py --results results.txt './simulate.sh {}' $(seq 1 50)
