"""Watcher scoring engines of watcher-failpredict.

Registered under the ``watcher_scoring_engines`` entry point.
"""
