"""The main window: its frame, the banners across its top, and how it composes the panels."""
