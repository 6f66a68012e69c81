"""Distributed hyperparameter and architecture search for image autoencoders.

Importing this package loads neither TensorFlow nor Ray; the modules that need them
(`search.models`, `search.trial`, `search.trainable`, `search.sweep`) import them themselves.
"""
