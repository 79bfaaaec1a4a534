"""The capture loop: frames -> faces -> tracks -> gated, embedded best frames -> decision -> event."""
