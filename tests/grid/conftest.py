import sys
from pathlib import Path

try:
    import gbp_torch  # noqa: F401
except ImportError:  # not installed: import from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
