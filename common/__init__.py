"""Shared ground: errors, atomic files and image reading, Ctrl-C handling.

A leaf: it imports nothing of ours, so blocks/, transforms/, printing/ and capture/ all build on
it without pointing back up at each other.
"""
