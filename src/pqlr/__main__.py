"""`python -m pqlr` is `pqlr`."""
import sys

from .cli import main

sys.exit(main())
