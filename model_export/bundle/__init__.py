"""Signed model bundles: keys, signing, verification and ``retail-export import``."""
