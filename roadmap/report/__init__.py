"""The report of a run: the per-seed frame aggregated into the table, intervals and verdicts, seed
noise, agreement with the paper or another run, captions, tables, the --flops-only table, the cost
study's report, and the figures (`plots/`, one module per figure family)."""
