"""The classify stage: posture and gesture labels per person, with hysteresis per track (:mod:`.rules`)."""
