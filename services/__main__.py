"""``python -m services`` is the ``qcdc`` command."""

from services.cli import main

main()
