"""One self-contained folder per paper: ``projects.<paper>``."""
