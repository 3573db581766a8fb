"""The MPD's fixed vocabulary of keys and identifiers, in one place for the readers, the
artifacts, the synthetic generator and the evaluation: a uri written twice can drift apart."""
from __future__ import annotations

import re

TRACK_KEYS = ("track_uri", "artist_uri", "album_uri", "track_name", "artist_name", "album_name")
URI_PREFIX = {"track_uri": "spotify:track:", "artist_uri": "spotify:artist:", "album_uri": "spotify:album:"}
URI_RE = {k: re.compile(re.escape(p) + r"[0-9A-Za-z]{22}\Z") for k, p in URI_PREFIX.items()}
# compilations credit this artist: kept for the artist credit of clicks, never a model input
VARIOUS_ARTISTS = "spotify:artist:0LyfQWJT6nXafLPZqxe9Of"
