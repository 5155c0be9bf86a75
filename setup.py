"""The optional C accelerator of the log's record frames (otelgravel/state/logframe.py): built
when a C compiler is there, left out (the pure-Python frame, same bytes) when it is not."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("otelgravel.state._logframe", ["otelgravel/state/_logframe.c"],
                             optional=True)])
