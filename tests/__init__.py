"""Streamport's tests.

Servers the suite starts make no HLS ladder unless a test asks for one (``hls_ladder=…``):
encoding renditions of every sample video would cost minutes of CPU and test nothing those
tests are about. Everything else runs with the defaults users get.
"""

import os

os.environ.setdefault("STREAMPORT_HLS_LADDER", "")
