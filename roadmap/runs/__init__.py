"""A run: its options and overrides, the plan (rows, resolved specs, keys, tasks), the device-hours
forecast, run.json, the state of every step x seed on disk, and a finished step's weights (eval,
export)."""
