"""Local exchange emulators for tests and demos."""
