"""The bundle's first runtime hook: keep the user's values of the variables that PyInstaller's
own runtime hooks overwrite (QT_PLUGIN_PATH, ...), so that programs the app starts get them
back (``krea_desktop.external.child_environment``)."""

from krea_desktop.external import record_original_environment

record_original_environment()
