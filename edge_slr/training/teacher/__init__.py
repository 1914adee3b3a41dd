"""The CorrNet-style video teacher: backbone, model, training, output cache.

Importing this package needs only numpy; torch is imported when a model is built or loaded.
"""
