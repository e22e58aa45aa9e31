"""nicoffload.hdl"""
