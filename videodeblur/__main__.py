"""``python -m videodeblur``: the same as the ``videodeblur`` command."""

import sys

from videodeblur.cli import main

sys.exit(main())
