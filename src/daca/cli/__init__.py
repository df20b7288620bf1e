"""The ``daca`` command line (``daca.cli.main:main``)."""
