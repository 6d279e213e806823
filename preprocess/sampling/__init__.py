"""Phase 1, sampling: where the segments are and what an annotator is asked.

Shot cuts (``shots``, PySceneDetect), voice activity (``vad_silero``, ``vad_pyannote``), the
segment policy that joins them (``segmenter``), the instruction each segment carries
(``instruction``), and the key-frame selection (``keyframes``: frame difference, optical flow,
ORB diversity) that the preprocess phase runs on each segment's frames. Decoding
(``preprocess/media.py``) is shared with the probe and preprocess phases, so it stays a level up.
"""
