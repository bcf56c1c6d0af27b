"""Lambda entrypoints: thin functions that unwrap an event source and call the domain."""
