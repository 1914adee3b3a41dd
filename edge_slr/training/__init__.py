"""edge_slr.training"""
