"""edge_slr.cli"""
