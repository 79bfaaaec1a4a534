"""`python -m edge`: the same command line as `edge`."""
import sys

from edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
