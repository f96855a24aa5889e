"""Documents: loading files, chunking text, and the SQL store."""
