"""2-D image / mask / label folders (ISIC 2017 and RETOUCH style) for the ResFormer + DFE family.

- ``folder``: reading and splitting a folder (NumPy + Pillow);
- ``dataset``: :class:`FolderDataset`, the torch dataset with paired augmentation;
- ``synthetic``: :func:`make_synthetic_2d_task`, a small synthetic folder for tests and demos.

Submodules are imported on use (``dataset`` imports torch).
"""
