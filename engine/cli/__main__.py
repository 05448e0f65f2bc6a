"""``python -m engine.cli``: the same as the ``floorflow`` command."""

import sys

from engine.cli.commands import main

sys.exit(main())
