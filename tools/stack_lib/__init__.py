"""The one-machine failpredict stack behind ``tools/stack``.

Run as ``python -m stack_lib.stack`` with ``tools/`` on ``PYTHONPATH`` (the
``tools/stack`` wrapper does both); ``loadmodel.py`` alone also runs as a
script under the system Python (collectd's exec plugin).
"""
