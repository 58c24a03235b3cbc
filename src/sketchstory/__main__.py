"""``python -m sketchstory``: the CLI, also where no ``sketchstory`` script is installed."""

import sys

from sketchstory.cli import main

sys.exit(main())
