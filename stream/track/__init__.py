"""The track stage: stable ids, boxes between detections and one crop per person (:mod:`.tracker`), IoU/OKS matching (:mod:`.matching`), One-Euro smoothing (:mod:`.smoothing`)."""
