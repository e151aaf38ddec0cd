"""The public Follow-Your-Pose code's defaults (FOLLOW_YOUR_POSE.md §2, §4), without importing
torch: the command line reads them when ``posestream`` builds its parser."""

#: Sampling (configs/pose_sample.yaml): DDIM steps, guidance scale, skeleton stride, clip length, seed, GIF rate.
SAMPLE_STEPS = 50
SAMPLE_GUIDANCE = 12.5
SAMPLE_STRIDE = 5
SAMPLE_FRAMES = 24
SAMPLE_SEED = 33
SAMPLE_FPS = 8.0
#: Training (configs/pose_train.yaml): AdamW learning rate, window length and stride.
TRAIN_LR = 3e-5
TRAIN_FRAMES = 12
TRAIN_STRIDE = 4
#: Parameter-name fragments of the layers stage 2 trains.
TRAINABLE_MODULES = ("attn1.to_q", "attn2.to_q", "attn_temp", "conv_temporal")
