"""Training one step x seed: the task (plain data a job receives), the trainer's loop, its data,
optimizer groups and per-iteration schedules, loss, checkpoints, --init weights, experiment logging,
progress, presets and the result record. FCMAE plugs into the trainer from roadmap.fcmae; the
trainer never imports it."""
