"""The built-in scenario library (TOML files; see README.md here)."""
