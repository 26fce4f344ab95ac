"""Sweeps in the window: the dialog that plans one, the run that sends its cells, and the
contact sheet that fills as they arrive."""
