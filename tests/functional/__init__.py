"""End-to-end tests through python-watcher's own functional harness.

Watcher's harness selects the oslo.service threading backend when
``watcher.tests.functional`` is imported; if anything imports oslo.service
first (Watcher's strategies base does, and so do our strategies), the
backend is already chosen and the harness dies with BackendAlreadySelected.
So this package imports it before anything else.
"""

import watcher.tests.functional  # noqa: F401  (must stay the first import)
