"""``python -m daca``: the ``daca`` command line."""

from daca.cli.main import main

if __name__ == "__main__":
    main()
