"""Evaluation metrics: :mod:`.fid` (FID, KID on feature sets), :mod:`.image` (per-item L1, SSIM, PSNR),
:mod:`.features` (feature backbones: the offline face network by default, Inception from a file on request),
:mod:`.landmarks` (landmark NME).
Submodules import torch / onnxruntime lazily; import them directly."""
