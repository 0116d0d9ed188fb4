"""The one-command demo on the real-data default (MNI152 template)."""
