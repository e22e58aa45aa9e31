"""Compatibility: the generator lives in nicoffload.tb.traffic (testbenches import it)."""
from nicoffload.tb.traffic import *  # noqa: F401,F403
from nicoffload.tb.traffic import corrupt_one_bit, malformed_frame, random_frame  # noqa: F401
