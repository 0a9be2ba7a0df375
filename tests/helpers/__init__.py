"""Plain functions and constants that several test modules share; fixtures stay in the conftest.py files.

Test modules import from here, never from each other or from a conftest.py (tests/unit/test_helper_imports.py).
"""
