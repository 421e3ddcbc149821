# Select Watcher's oslo.service backend before any test module imports
# oslo.service (Watcher's strategies base does): otherwise the functional
# harness fails with BackendAlreadySelected whenever a unit test module is
# collected before tests/functional (e.g. pytest tests/unit/x.py tests).
import watcher.tests.functional  # noqa: F401
