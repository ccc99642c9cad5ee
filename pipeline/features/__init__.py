"""PyAV decoding, frame sampling and the feature container format."""
