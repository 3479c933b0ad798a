import sys

from simulator.cli import console_main

sys.exit(console_main())
