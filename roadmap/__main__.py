"""`python -m roadmap ...`: the same command as `python run_roadmap.py ...`, for an installed package."""

import sys
import warnings

# fvcore and timm call torch.jit APIs that torch deprecates; the warning is not the user's concern.
# Set here, by the program, before the command line's modules import them (never by a library import).
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from roadmap.cli import main  # noqa: E402

sys.exit(main())
