"""Launching: the executors (local, debug, SLURM) through submitit, what one job does, the launcher's
progress lines, and the run's launch from plan to report."""
