"""How a network runs on this machine and what it costs there: numerics (precision, memory format,
compilation, provenance), the processes of a data-parallel step and their CPU threads, and measured
speed and memory per named setting. Used by the data loaders, the trainer and the cost study."""
