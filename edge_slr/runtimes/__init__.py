"""edge_slr.runtimes"""
