#!/bin/bash
# Periodic checkpoints every 30 minutes (counted from the end of the previous one), plus the
# driver's own between programs. `dmtcpctl interval 10m` (inside the job) or
# `dmtcpctl --job <id> interval 10m` (from a login node) changes the interval while it runs.
#SBATCH --job-name=sweep-periodic
#SBATCH --dmtcp-interval=30m
#SBATCH --time=12:00:00
#SBATCH --open-mode=append
#SBATCH --output=sweep-%j.out
export PYTHONPATH=${SLURM_DMTCP_PYTHON:-/usr/local/share/slurm-dmtcp/python}${PYTHONPATH:+:$PYTHONPATH}
dmtcpctl status
python3 sweep.py --results results.txt './simulate.sh {}' $(seq 1 20)
dmtcpctl generations
