"""Dialogs opened from the menu."""
