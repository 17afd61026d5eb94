"""Vision tasks built on GBP: denoising (stereo and flow to come)."""
