"""edge_slr.converters"""
