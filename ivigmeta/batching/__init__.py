"""Running the engine over millions of groups: chunks, spans, processes, spill files."""
