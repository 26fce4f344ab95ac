"""The Qt shell: every Qt import in the program lives in this package."""
