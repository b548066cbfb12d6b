"""Offline evaluation suites."""
