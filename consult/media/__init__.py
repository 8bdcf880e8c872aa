"""Media: aiortc peers per consultation (relay, recording); the only package importing aiortc."""
