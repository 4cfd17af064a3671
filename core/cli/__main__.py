"""``python -m shopmtl.core.cli``: the same as the ``shopmtl`` command."""

from shopmtl.core.cli.main import main

main()
