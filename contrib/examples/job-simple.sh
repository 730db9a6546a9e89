#!/bin/bash
# The simplest case: the whole job under DMTCP; checkpoints at the site's default interval,
# on requeue/preemption/time limit, and whenever the driver asks (between two programs).
#SBATCH --job-name=sweep
#SBATCH --dmtcp
#SBATCH --time=02:00:00
#SBATCH --open-mode=append
#SBATCH --output=sweep-%j.out
# slurm_dmtcp (the Python client): installed in $(PREFIX)/share/slurm-dmtcp/python by make install.
export PYTHONPATH=${SLURM_DMTCP_PYTHON:-/usr/local/share/slurm-dmtcp/python}${PYTHONPATH:+:$PYTHONPATH}
python3 sweep.py --results results.txt './simulate.sh {}' 0.1 0.2 0.5 1.0 2.0
