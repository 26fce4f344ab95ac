"""What to make: the aspect-ratio bar and the prompt panel of the left column."""
