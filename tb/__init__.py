"""nicoffload.tb"""
