"""The reference tray: its cards, and turning drops and pastes into loaded images."""
