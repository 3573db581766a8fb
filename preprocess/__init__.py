"""Stage 1: MPD slices -> compact artifacts; synthetic MPD; local challenge sets."""
