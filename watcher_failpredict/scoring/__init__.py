"""Watcher scoring engines of watcher-failpredict (``watcher_scoring_engines``)."""
