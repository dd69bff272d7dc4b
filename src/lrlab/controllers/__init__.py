"""Reactive controllers that produce an lr *scale* (plateau reduction)."""
