"""HTTP service: translates HTTP to the scoring flow in ``classifier``; holds no policy of its own."""
