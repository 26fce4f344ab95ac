"""Krea Desktop: iterate on images with Krea 2 Medium through Runware's API."""

__version__ = "0.1.0"
APP_NAME = "Krea Desktop"
APP_ID = "ai.krea.KreaDesktop"
