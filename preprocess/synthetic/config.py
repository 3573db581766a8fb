"""The generator's calibrated constants and named profiles, apart from the code that draws with
them: calibration (bench/calibrate.py, bench/calibrate_tail.py) varies these fields and nothing
else, and a profile is nothing but a set of their values."""
from __future__ import annotations

from dataclasses import dataclass

from common.errors import PipelineError


@dataclass(frozen=True)
class SynthConfig:
    """Calibrated constants (bench/calibrate.py checks them against the MPD's figures)."""

    # world at WORLD_PLAYLISTS playlists; beyond, artist counts grow as (N / 1M) ** world_growth
    n_artists: int = 3_000_000
    world_growth: float = 0.45
    artist_head: float = 1.05  # artist popularity ~ rank ** -head up to the break, ** -tail after it
    artist_break: float = 950.0  # in the largest genre; scaled with genre size
    artist_tail: float = 3.2
    artists_per_scene: int = 60
    scene_stars: int = 1  # head artists dealt to each scene before the other ranks are scattered
    scene_power: float = 0.5  # scene choice ~ (scene popularity) ** scene_power
    tracks_scale: float = 3.0  # catalogue depth ~ scale * (plays at 1M) ** power
    tracks_power: float = 0.6
    tracks_cap: int = 20_000
    track_zipf: float = 1.95  # within-artist track popularity ~ (rank + q) ** -zipf, with
    track_q0: float = 0.16  # q = q0 + q1 * (plays at 1M / 1e4) ** q_power: stars have flat heads
    track_q1: float = 0.12
    track_q_power: float = 1.0
    album_size: float = 8.0
    n_hits: int = 3000  # global hit list size
    hit_power: float = 0.7
    # playlists
    length_shape: float = 1.3
    length_scale: float = 50.0
    p_hit: float = 0.06
    p_niche: float = 0.0  # share of niche playlists: no hits, no scene, deep cuts of their genres' artists
    p_scene: float = 0.72  # of the remaining (taste) segments, share drawn from the scene
    p_continue: float = 0.30  # mean chance an entry continues the previous segment
    p_album_run: float = 0.18  # mean chance a segment is a run through one album
    drift: float = 0.45  # mean growth of the secondary taste's share from start to end
    p_same_family: float = 0.5
    p_repeat: float = 0.03  # playlists that repeat a track (once or twice)
    # titles and metadata
    title_naming: float = 1.0  # scales every taste's chance of a title from its vocabulary
    p_title_generic: float = 0.17  # of the titles not from the taste vocabulary; the rest are personal
    p_title_secondary: float = 0.10  # of taste titles, share taken from the secondary taste
    p_title_loose: float = 0.0  # of taste titles, share from a mood chosen by how often it names playlists,
    # whatever the content ("chill" over rap)
    p_title_rare: float = 0.0  # of personal titles, share from a deep pool of rare ones: pool index
    rare_head: float = 12_000.0  # ~ rare_head * (U ** (-1 / personal_alpha) - 1), repeats only at large scale
    title_zipf: float = 1.2
    personal_alpha: float = 2.5  # personal title pool index ~ head * (U ** (-1 / alpha) - 1)
    personal_head: float = 3000.0
    p_typo: float = 0.001  # title noise that survives normalisation ...
    p_stretch: float = 0.003
    p_emoji: float = 0.01
    p_punct: float = 0.12  # ... and noise that does not
    p_description: float = 0.019
    p_collaborative: float = 0.023


# Named profiles (bench/calibration.md). "mpd", the default, matches the full MPD's published
# statistics but is kinder than real data at small scale: its ALS curve is flat over rank at 8K
# playlists and too many withheld tracks were seen in training. "realistic" matches a real 8K-playlist
# MPD excerpt (SPEC section 5): a tenth of the scenes, each with three head artists, chosen by
# popularity (structure that a sample of 8K playlists can learn and that rewards high-rank models),
# 13% niche playlists of deep cuts (withheld tracks nobody else played: no model hits them), and
# titles that point at content only loosely: fewer taste titles from flatter vocabularies, a fifth of
# them a popular mood whatever the content ("chill" over rap), and most personal titles from a deep
# pool of rare ones (alone in an 8K sample, as 36% of the real excerpt's are), with more typos and
# stretched letters and fewer emoji (bench/calibration.md, "Titles").
PROFILES: dict[str, SynthConfig] = {
    "mpd": SynthConfig(),
    "realistic": SynthConfig(artists_per_scene=600, scene_stars=3, scene_power=1.15, p_niche=0.13,
                             title_naming=0.7, p_title_generic=0.08, title_zipf=0.8, p_title_loose=0.2,
                             p_title_rare=0.6, p_typo=0.02, p_stretch=0.03, p_emoji=0.005),
}
DEFAULT_PROFILE = "mpd"


def synth_config(profile: str) -> SynthConfig:
    """The SynthConfig of a named profile; an unknown name is a one-line PipelineError."""
    try:
        return PROFILES[profile]
    except (KeyError, TypeError):
        raise PipelineError(f"unknown synthetic profile {profile!r} (choose from {', '.join(PROFILES)})") from None
