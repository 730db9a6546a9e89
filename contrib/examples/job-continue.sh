#!/bin/bash
# A sweep longer than the partition's time limit: 10 minutes before the limit slurm-dmtcp
# checkpoints, requeues the job and resumes it, for up to 36 hours of run time in all
# (--dmtcp-continue=N for N runs instead). The site bounds both (plugstack.conf).
#SBATCH --job-name=sweep-long
#SBATCH --time=04:00:00
#SBATCH --dmtcp
#SBATCH --dmtcp-lead=10m
#SBATCH --dmtcp-continue=36h
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=sweep-%j.out
export PYTHONPATH=${SLURM_DMTCP_PYTHON:-/usr/local/share/slurm-dmtcp/python}${PYTHONPATH:+:$PYTHONPATH}
python3 sweep.py --interval 1h --results results.txt './simulate.sh {}' $(seq 1 500)
