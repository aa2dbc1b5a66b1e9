#!/usr/bin/env python
"""Entry point: `python run_roadmap.py --upto ln` (see README.md)."""

import sys
import warnings

# fvcore and timm call torch.jit APIs that torch deprecates; the warning is not the user's concern.
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from roadmap.cli.commands import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
