"""Bundled experiment presets (TOML files shipped as package data)."""
