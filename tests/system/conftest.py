"""The system tests' marker: ``pytest -m 'not system'`` leaves them out.

They run by default (``tools/run-tests`` runs ``pytest tests``); each brings
the one-machine stack (``tools/stack``) up itself and down at the end.
"""


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'system: brings up the real multi-process stack '
                   '(tools/stack); minutes, not seconds')
