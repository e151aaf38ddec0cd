"""The lift stage: each track's COCO-17 keypoints → H36M-17 3D (:mod:`.stage`), with VideoPose3D's temporal network run streaming in NumPy (:mod:`.model`)."""
