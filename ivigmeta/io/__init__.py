"""Reading and validating study tables: files, encodings, column conventions, row errors."""
