"""The bundle's entry script: PyInstaller freezes this file into the ``krea-desktop`` launcher."""

import sys

from krea_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
