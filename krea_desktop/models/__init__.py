"""What the window shows, kept without Qt: the reference set and the job queue.

Widgets observe these models (through :class:`~krea_desktop.models.events.Event`) and
change them through their methods; the command line can use them without a display.
"""
