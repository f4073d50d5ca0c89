"""Small utilities used unchanged by two or more papers (see CONVENTIONS.md, item 8)."""
