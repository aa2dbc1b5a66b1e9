"""Shared fixtures. Tests run on CPU with a fixed number of threads for repeatable timings."""

import torch

torch.set_num_threads(max(1, torch.get_num_threads()))


def pytest_terminal_summary(terminalreporter) -> None:
    """One line saying how many SLURM tests ran: CI must show they were not all skipped."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if "slurm" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if outcome != "passed" or report.when == "call":
                    counts[outcome] += 1
    ran = counts["passed"] + counts["failed"]
    terminalreporter.write_line(
        f"slurm tests: {ran} ran ({counts['passed']} passed, {counts['failed']} failed), {counts['skipped']} skipped"
    )
