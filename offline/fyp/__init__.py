"""Follow-Your-Pose: pose-guided text-to-video on Stable Diffusion v1.4, built on diffusers.

Ma et al., "Follow Your Pose: Pose-Guided Text-to-Video Generation using Pose-Free Videos",
AAAI 2024 (arXiv 2304.01186); the released code is MIT-licensed, the SD v1.4 weights CreativeML
OpenRAIL-M. Facts used here: ``../shared/FOLLOW_YOUR_POSE.md``.

Modules, in data-flow order:

* :mod:`.video_unet`: SD's 2D ``UNet2DConditionModel`` inflated to video (per-frame convs,
  sparse-causal ``attn1``, ``attn_temp``, ``conv_temporal``, group norms over frames) and the
  T2I-Adapter pose features added at each down level.
* :mod:`.checkpoint`: the model folder: the released layout (key-mapping loader that fails on any
  missing or unexpected key) and ours (safetensors); model hashes.
* :mod:`.sampling`: prompt encoding, DDIM sampling with classifier-free guidance, VAE decoding.
* :mod:`.train`: fine-tuning the temporal layers on one clip, with its own skeletons.
* :mod:`.tiny`: a tiny random model of the same architecture in the released layout.
* :mod:`.cli`: ``posestream fyp fetch | generate | train``.

torch, diffusers and transformers are imported by these modules: only the offline commands
import them (the ``[offline]`` extra).
"""
