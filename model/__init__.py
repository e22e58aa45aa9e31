"""nicoffload.model"""
