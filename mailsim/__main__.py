"""``python -m mailsim`` is the ``mailsim`` command."""

import sys

from mailsim.cli import main

sys.exit(main())
