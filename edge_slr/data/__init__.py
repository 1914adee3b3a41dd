"""edge_slr.data"""
