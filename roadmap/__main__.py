"""`python -m roadmap ...`: the same command as `python run_roadmap.py ...`, for an installed package."""

import sys

from roadmap.cli import main

sys.exit(main())
