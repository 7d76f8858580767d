"""Generation machinery in pure PyTorch: schedules, sampler steps, guidance (more to come: latents, conditioning,
stages)."""
