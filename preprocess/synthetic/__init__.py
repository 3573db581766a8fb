"""Calibrated synthetic Million Playlist Dataset: MPD slices that behave like the real MPD.

Why: the real MPD cannot be shipped, yet every model is judged on this embedded default, so the
data must reward what works on the MPD (co-occurrence, artist/album structure, titles as a weak
signal) and punish what does not (popularity alone). The generative story:

* A fixed *world* (sized for 1M playlists, growing beyond): genres -> scenes -> artists ->
  albums -> tracks. Artist popularity is a broken power law (a flat head of stars, a steep
  tail), track popularity within an artist a Zipf-Mandelbrot law over a deep catalogue, so a
  sample's counts of distinct tracks and artists grow with its size as the MPD's do (Heaps-like)
  and a 20K sample keeps the long tail that a 20K sample of the MPD would have.
* A playlist has a main and a secondary *taste* (a genre, or a mood such as workout that mixes
  genres) and a favourite scene for each. Its entries come in segments (artist runs, album
  runs) drawn from the scene, the genre or the global hits; the secondary taste's share drifts
  upwards along the playlist, so the first tracks differ from a random sample. Duplicates are
  dropped except in a few playlists (real files repeat tracks).
* MPD selection rules (5..250 tracks, >= 3 artists, >= 2 albums) filter candidate playlists.
* Titles come from the main taste's vocabulary, generic titles or a long tail of personal ones,
  with user noise (case, emoji, stretched letters, typos, punctuation): a weak-to-medium signal.
* Profiles (PROFILES, `--profile`): "mpd", the default, is calibrated to the full MPD's statistics;
  "realistic" to a real 8K-playlist excerpt, where it is harder: fewer, shared scenes with several
  stars each (structure that wants high-rank models), niche playlists of deep cuts (no hits, no
  scene, any track of their genres' artists: withheld tracks no one else in the sample played) and
  weaker titles: fewer from the taste, some moods over any content, many rare personal ones.

Everything is vectorised per slice of 1,000 playlists; slice k depends only on (seed, k) and the
world, so output is byte-identical per seed and the first slices of a larger dataset equal a
smaller one (up to 1M playlists). Calibration against the MPD: bench/calibration.md.
"""
from preprocess.synthetic.config import DEFAULT_PROFILE, PROFILES, SynthConfig, synth_config
from preprocess.synthetic.playlists import SliceData, sample_slice
from preprocess.synthetic.render import VARIOUS_ARTISTS_ID, render_slice, uris
from preprocess.synthetic.tables import MOODS
from preprocess.synthetic.tastes import Tastes, tastes
from preprocess.synthetic.world import WORLD_PLAYLISTS, World, build_world
from preprocess.synthetic.writer import (MAX_PLAYLISTS, SLICE_SIZE, generate, make_slice, slice_bounds, slice_name,
                                         slice_text, write_mpd)

__all__ = ["DEFAULT_PROFILE", "MAX_PLAYLISTS", "MOODS", "PROFILES", "SLICE_SIZE", "VARIOUS_ARTISTS_ID",
           "WORLD_PLAYLISTS", "SliceData", "SynthConfig", "Tastes", "World", "build_world", "generate",
           "make_slice", "render_slice", "sample_slice", "slice_bounds", "slice_name", "slice_text",
           "synth_config", "tastes", "uris", "write_mpd"]
