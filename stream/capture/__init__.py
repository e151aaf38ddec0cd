"""The capture stage: frames from recorded files and images (:mod:`.files`) and from webcams and RTSP cameras (:mod:`.cameras`)."""
