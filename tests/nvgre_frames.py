"""The NVGRE frame builder lives in ``nicoffload.tb.nvgre_frames`` (the RTL benches use it
too); the model tests import it by this name."""

import sys

from nicoffload.tb import nvgre_frames

sys.modules[__name__] = nvgre_frames
