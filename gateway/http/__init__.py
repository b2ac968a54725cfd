"""HTTP adapters: thin Flask blueprints that parse, call the engine, and render."""
