"""The gallery: model, view, delegate, thumbnails, and what can be done with its images."""
