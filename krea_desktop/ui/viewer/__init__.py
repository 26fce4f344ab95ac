"""Looking at images at full size: the canvas, the viewer window and the comparison."""
