"""Rendered ground truth: scene descriptions (``scene``), ground-truth math (``truth``), the
Blender side (``blender``, the only module that imports bpy) and the render worker process
(``worker``) that keeps Blender out of the build's own processes."""
