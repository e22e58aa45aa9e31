"""nicoffload.sim"""
