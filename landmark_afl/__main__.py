"""``python -m landmark_afl ...`` (what ``torchrun -m landmark_afl`` runs)."""

from __future__ import annotations

import sys

from landmark_afl.cli import main

if __name__ == "__main__":
    sys.exit(main())
