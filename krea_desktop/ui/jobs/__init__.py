"""Running jobs: the client thread that does the work and the list that shows it."""
