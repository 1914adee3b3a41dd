"""edge_slr.landmarks"""
