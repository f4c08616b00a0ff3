"""The packaged app's entry point (PyInstaller runs this file as __main__): `berth` as installed
from source, window or command line."""
import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
