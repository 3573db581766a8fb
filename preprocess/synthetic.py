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
from __future__ import annotations

import argparse
import functools
import json
import logging
import multiprocessing as mp
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from common.cli import run_cli
from common.errors import PipelineError
from common.io import atomic_path

log = logging.getLogger("synthetic")

SLICE_SIZE = 1000
MAX_PLAYLISTS = 10_000_000
WORLD_PLAYLISTS = 1_000_000  # the world is sized for this many playlists and grows beyond
VARIOUS_ARTISTS_ID = "0LyfQWJT6nXafLPZqxe9Of"
_SLICE_NAME = re.compile(r"mpd\.slice\.\d+-\d+\.json\Z")
_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_DAY = 86400
_LAST_DAY = 1509494400 // _DAY  # 2017-11-01, the MPD's end
_FIRST_DAY = 1262304000 // _DAY  # 2010-01-01, the MPD's start


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


# ---- tastes ----------------------------------------------------------------------------------
# genre: (name, family, weight, naming, emojis, titles "|"-separated, most common first, "=w" sets a weight)
# naming: chance that a playlist of this taste takes its title from the taste's vocabulary
_GENRES = (
    ("pop", "pop", 9.0, 0.1, "💃🎤✨", "pop|top hits|pop hits|hits|today's top hits|pop music|top 40|bops|pop jams|radio hits|pop 2017|current hits|hot hits|pop songs|pop faves"),
    ("rap", "urban", 9.0, 0.34, "🔥💯🐐", "rap|hip hop=0.3|lit|rap caviar|hip hop/rap|rap music|turn up|hype|rap 🔥|bangers|hip-hop|rap jams|savage|rap playlist|trap music|goat"),
    ("country", "country", 7.0, 0.52, "🤠🐴🍺", "country|country music=0.3|classic country|country jams|new country|country faves|country songs|old country|country mix|country vibes|country 2017|backroads|country girl|country roads|southern|truck songs|bonfire"),
    ("rock", "rock", 4.6, 0.5, "🤘🎸", "rock|rock music|rock and roll|rock n roll|hard rock|rock playlist|rock on|rock classics|rock songs|alt rock|guitar|rock anthems"),
    ("r&b", "urban", 4.4, 0.2, "💜🌹", "r&b|rnb|r&b/soul|slow jams|r&b vibes|baby making music|r and b|smooth r&b|rnb vibes|r&b jams|late night r&b"),
    ("edm", "electronic", 3.4, 0.3, "🎧⚡", "edm|electronic|dance|edm bangers|electro|festival|edc|edm 2017|raves|drops|electronic music|dance music|edm mix"),
    ("indie", "alt", 3.2, 0.3, "🌿🌻", "indie|indie rock|indie folk|indie vibes|indie music|indie pop|hipster|indie jams|indie mix|coffeehouse|indie chill"),
    ("alternative", "alt", 2.6, 0.33, "🖤🌧", "alternative|alt|alternative rock|alt rock|alternative music|modern rock|alt jams|alternative mix"),
    ("latin", "latin", 2.0, 0.45, "🇲🇽💃", "latin|latino|spanish|musica|latin music|bachata|salsa|spanish songs|cumbia|musica latina"),
    ("worship", "christian", 2.9, 0.6, "🙏✝️🙌", "worship|christian|church|jesus|praise|praise and worship|christian music|god|worship music|sunday|faith|hillsong|gospel"),
    ("christmas", "holiday", 3.3, 0.82, "🎄🎅❄️", "christmas|christmas music=0.3|xmas|christmas songs|holiday|christmas 2016|holidays|christmas playlist|christmas mix|merry christmas|winter|christmas classics"),
    ("disney", "kids", 2.4, 0.58, "🏰✨🐭", "disney|disney songs|disney music|disney jams|disney channel|disney playlist|musicals|disney classics|princess|disney ❤️|pixar"),
    ("oldies", "retro", 3.4, 0.8, "📻🎙", "oldies|oldies but goodies|60s|70s|classics|motown|old school|golden oldies|oldies music|50s|60s and 70s|doo wop"),
    ("classic rock", "rock", 2.8, 0.33, "🎸🤘", "classic rock|classic|classic rock n roll|70s rock|dad rock|rock classics|old rock|80s rock|classic rock 🎸"),
    ("80s", "retro", 1.7, 0.45, "📼🕺", "80s|80's|80s music|80s hits|eighties|80s jams|80s pop|new wave"),
    ("90s", "retro", 1.4, 0.45, "📟💿", "90s|90's|90s music|90s hits|nineties|90s jams|90s rap|90s r&b|90s alternative"),
    ("2000s", "retro", 2.0, 0.45, "💿📱", "2000s|00s|2000's|early 2000s|2000s hits|2000s jams|00s hits|emo 2000s"),
    ("metal", "rock", 1.6, 0.45, "🤘💀", "metal|heavy metal|metalcore|death metal|metal 🤘|hardcore|thrash|heavy|screamo"),
    ("punk", "rock", 1.0, 0.45, "🧷", "punk|pop punk|punk rock|skate punk|punk jams|pop-punk"),
    ("emo", "rock", 1.3, 0.45, "🖤💔", "emo|emo jams|emo songs|emo trash|sad emo|emo phase|emo nite"),
    ("jazz", "mellow", 0.9, 0.45, "🎷🎺", "jazz|smooth jazz|jazz music|jazzy|jazz classics|bossa nova|swing|big band"),
    ("classical", "mellow", 0.9, 0.45, "🎻🎹", "classical|classical music|piano|orchestra|mozart|classics|baroque|symphony|strings"),
    ("reggae", "island", 0.9, 0.45, "🌴🇯🇲", "reggae|reggae vibes|roots|island|island vibes|dub|ska|reggae music"),
    ("folk", "country", 1.1, 0.45, "🌾🪕", "folk|folk music|americana|acoustic folk|folky|singer songwriter|folk rock"),
    ("blues", "retro", 0.5, 0.45, "🎷", "blues|the blues|blues rock|delta blues|blues music"),
    ("soul", "urban", 0.9, 0.45, "🎙🌹", "soul|soul music|neo soul|motown soul|soulful|classic soul|funk and soul"),
    ("kpop", "pop", 1.2, 0.45, "🇰🇷💖", "kpop|k-pop|bts|korean|kpop jams|k pop|kpop faves"),
    ("trap", "urban", 1.2, 0.45, "🔥💸", "trap|trap music|trap bangers|trap house|trap nation|trap jams|trap 🔥"),
    ("house", "electronic", 0.9, 0.45, "🏠🎧", "house|deep house|house music|tropical house|tech house|house party|house vibes"),
    ("dubstep", "electronic", 0.6, 0.45, "🔊", "dubstep|bass|drops|brostep|bass music|riddim"),
    ("acoustic", "mellow", 1.2, 0.45, "🎸☕", "acoustic|acoustic covers|covers|acoustic chill|unplugged|acoustic love|stripped"),
    ("lofi", "mellow", 0.8, 0.45, "☕🎧", "lofi|lo-fi|lofi hip hop|beats|chillhop|jazzhop|lofi beats"),
    ("gospel", "christian", 0.7, 0.45, "🙏", "gospel|gospel music|sunday morning|church songs|gospel hymns|hymns"),
    ("broadway", "kids", 0.7, 0.45, "🎭", "broadway|musicals|hamilton|show tunes|musical theatre|broadway musicals"),
    ("kids", "kids", 0.4, 0.45, "🧸", "kids|kids music|for the kids|kids songs|family|car songs for kids"),
    ("ambient", "mellow", 0.7, 0.45, "🌙☁️", "ambient|piano|instrumental|peaceful piano|meditation|yoga|calm|spa|ambient music"),
    ("reggaeton", "latin", 0.9, 0.45, "🔥💃", "reggaeton|reggaeton 🔥|perreo|latin trap|reggaeton mix|reggaeton lento"),
    ("bluegrass", "country", 0.4, 0.45, "🪕", "bluegrass|banjo|mountain music|newgrass"),
    ("funk", "urban", 0.4, 0.45, "🕺", "funk|funky|disco|groove|funk music|boogie"),
    ("grunge", "rock", 0.5, 0.45, "🎸", "grunge|90s grunge|seattle|grunge rock"),
)
# mood: (name, weight, naming, emojis, genre profile "genre:w,...", titles)
_MOODS = (
    ("workout", 4.6, 0.68, "💪🏋🔥", "rap:4,edm:3,pop:2,trap:1.5,rock:1,house:1,dubstep:.5", "workout|gym=0.35|workout mix|running|lift|gym music|run|cardio|beast mode|pump up|workout playlist|gains|gym playlist|lifting|running mix|sweat|crossfit|spin|hiit"),
    ("chill", 4.6, 0.79, "😌🌙☁️", "indie:3,r&b:2,acoustic:2,lofi:2,pop:1.5,alternative:1,soul:.5,reggae:.5", "chill|chill vibes=0.3|chillin|chill music|relax|mellow|chill mix|chilled|calm|lazy sunday|coffee|laid back|chill out|relaxing|easy|cozy|rainy day"),
    ("party", 3.4, 0.65, "🎉🍻💃", "pop:3,rap:3,edm:2,latin:1,2000s:1,house:1,reggaeton:1", "party|party playlist|pregame|party mix|lit|turn up|party time|dance|party music|pre game|dance party|birthday|party hits|drinking|saturday night|club"),
    ("throwback", 3.6, 0.55, "⏪📼", "2000s:4,90s:2.5,rap:1,r&b:1.5,pop:1", "throwback|throwbacks=0.65|throwback jams|old school|tbt|throwback thursday|middle school|nostalgia|childhood|high school|2000s throwbacks|memories"),
    ("summer", 2.8, 0.63, "☀️🌴🌊", "pop:3,country:2,rap:1.5,reggae:1,latin:1,edm:1", "summer|summer 2017|summer vibes|summer 17|beach|summertime|summer jams|summer 2016|pool|beach vibes|summer playlist|summer nights|vacation|sun|july|june"),
    ("feels", 2.4, 0.69, "💔😢💭", "r&b:3,pop:2,indie:2,alternative:1,acoustic:1,emo:1", "feels|sad|in my feels|feelings|mood|sad songs|heartbreak|emotional|sad vibes|cry|late night|sad boi|in my feelings|moody|deep"),
    ("sleep", 1.8, 0.67, "😴🌙💤", "ambient:4,acoustic:2,classical:2,lofi:1,indie:1", "sleep|sleepy|sleep music|bedtime|night|relax|sleeping|lullaby|dreams|peaceful|night time|rest|slow"),
    ("vibes", 1.8, 0.61, "✨🌊😎", "r&b:3,rap:2,lofi:1,soul:1,pop:1", "vibes|good vibes|vibe|vibes only|late night vibes|vibez|good vibes only|wavy|smooth"),
    ("road trip", 1.7, 0.45, "🚗🛣", "classic rock:2,pop:2,country:2,indie:1.5,rock:1,2000s:1", "road trip|roadtrip|car|car jams|drive|driving|road trip 2017|travel|cruising|car songs|long drive|driving music|on the road"),
    ("love", 1.4, 0.45, "❤️💕😍", "r&b:3,pop:2,country:2,soul:1,acoustic:1", "love|love songs|bae|romance|baby|us|wedding|crush|him|her|date night|in love|babe"),
    ("study", 1.2, 0.45, "📚✏️", "lofi:3,classical:3,ambient:2,indie:1,jazz:1", "study|studying|focus|homework|study music|concentration|reading|work|study playlist|coffee shop|background|instrumental"),
    ("happy", 1.0, 0.45, "😊🌈☀️", "pop:3,indie:1.5,funk:1,soul:1,country:1", "happy|good mood|happy songs|feel good|sunshine|smile|good day|positive|upbeat|happy vibes"),
)
_GENERIC = ("jams:3.5|new:3.2|music:2.7|favorites:1.6|my playlist:1.5|songs:1.5|playlist:1.4|mix:1.4|random:1.4|"
            "faves:1.5|good music:1.5|my songs:1.3|stuff:1.2|new music:1.2|2017:1.4|2016:1|2015:.6|new playlist:1|"
            "good songs:1.2|everything:.8|my music:.8|yes:.5|best:.5|whatever:.4|songs i like:.6|current:.6|liked:.6|"
            "all:.5|main:.4|my jams:.8|favs:.8|favorite songs:.8|tunes:.7|good stuff:.5|bops:.7|"
            "new stuff:.5|jamz:.5|jams 2017:.4|mood:.5|idk:.5|untitled:.4|"
            "🔥:1.2|💯:1|😍:.8|🎶:.8|❤️:.8|✨:.6|🙌:.5|👌:.5|😎:.5|💕:.5|🌞:.3|🤘:.3|👑:.3|🌸:.3|🐐:.2|🎧:.3|🌊:.3")
_FIRST_NAMES = ("sarah jake emily josh hannah tyler madison ryan ashley kyle jessica brandon lauren matt taylor "
                "chris megan nick rachel alex sam katie jordan kayla austin amanda zach brittany andrew nicole "
                "jacob olivia emma liam noah ava mia ethan logan lucas mason abby grace chloe maria jose carlos "
                "sofia luis ana david daniel michael john james mom dad grandma babe bae").split()
_THEME_WORDS = ("car shower beach work morning night drive lake pool road weekend friday sunday monday rain "
                "sunshine fire ocean mountain city home cabin camping boat coffee dinner kitchen bbq birthday "
                "wedding graduation senior spring fall winter autumn vacation florida texas california cali "
                "hawaii mexico beach house getaway adventure wanderlust dreams memories moments goodbye "
                "hello random mixtape tunes bops bangers anthems favs feelings mood energy hype zen calm "
                "golden blue purple pink red green black white neon sunset sunrise midnight stars moon "
                "space cosmic wild young free forever always never someday tonight today yesterday").split()
_MONTHS = "january february march april may june july august september october november december".split()
_SONG_WORDS = ("love night heart baby fire dream summer girl time home light life world boy rain sky "
               "money gold blue red wild young free forever tonight away back down up over crazy feel "
               "dance run fall hold stay believe remember alone together lost found broken better good "
               "bad sweet lonely happy sad high low river road city star moon sun ocean wave storm "
               "thunder shadow ghost angel devil king queen paradise heaven hell dreams days nights "
               "lights eyes hands lips kiss touch tears smile way road mind soul body fever sugar "
               "honey whiskey diamond gun money party people friends enemies hero island desert rose "
               "summer winter spring sunset sunrise midnight morning tomorrow yesterday million "
               "thousand hundred one two three last first only little big new old slow fast").split()
_SYLLABLES = ("ka ri lo ne va mi so ta ze ro li an el on ar us ix ey ja mo de sa ly ra ko vi to ma na ce ba "
              "da fe go hu jo ki le nu pa ru si te vo wa xe yo zu bri cla dro fla gre kro pla shi sto tra "
              "qui ther lan mar ven sol dor kai nyx ren tal zé ña lö bé sø").split()


@dataclass(frozen=True)
class Tastes:
    names: tuple[str, ...]
    weight: np.ndarray  # float [K] share of playlists with this main taste
    profile_cw: np.ndarray  # float [K, G] cumulative genre profile per taste
    affinity_cw: np.ndarray  # float [K, K] cumulative secondary-taste choice given the main one
    titles: tuple[tuple[str, ...], ...]
    title_cw: tuple[np.ndarray, ...]
    emojis: tuple[tuple[str, ...], ...]
    genre_weight: np.ndarray  # float [G]
    naming: np.ndarray  # float [K] chance of a title from the taste's vocabulary
    loose_cw: np.ndarray  # float [K] cumulative choice of a loose title's taste: moods by title popularity


@functools.lru_cache(maxsize=4)
def tastes(config: SynthConfig = SynthConfig()) -> Tastes:
    """Genre tastes first (taste g is genre g, with a little of its family), then mood tastes."""
    g_index = {g[0]: i for i, g in enumerate(_GENRES)}
    n_g = len(_GENRES)
    families = np.array([g[1] for g in _GENRES] + ["mood"] * len(_MOODS))
    profiles = np.zeros((n_g + len(_MOODS), n_g))
    for i in range(n_g):
        kin = (families[:n_g] == families[i]) & (np.arange(n_g) != i)
        profiles[i, i] = 0.85 if kin.any() else 1.0
        profiles[i, kin] = 0.15 / max(1, kin.sum())
    for i, mood in enumerate(_MOODS, start=n_g):
        for part in mood[4].split(","):
            genre, share = part.split(":")
            profiles[i, g_index[genre]] = float(share)
    profiles /= profiles.sum(axis=1, keepdims=True)
    rows = [(g[0], g[2], g[3], g[4], g[5]) for g in _GENRES] + [(m[0], m[1], m[2], m[3], m[5]) for m in _MOODS]
    names, weights, naming, emojis, vocab_specs = zip(*rows)
    weight = np.asarray(weights) / np.sum(weights)
    # the secondary taste: by popularity, with extra chance for the main taste's family
    k = len(names)
    other = ~np.eye(k, dtype=bool)
    base = np.broadcast_to(weight, (k, k)) * other
    kin = np.where((families[:, None] == families[None, :]) & other, base, 0.0)
    kin_sum = kin.sum(axis=1, keepdims=True)
    p = config.p_same_family
    aff = (1 - p) * base / base.sum(axis=1, keepdims=True) + p * kin / np.maximum(kin_sum, 1e-12)
    aff /= aff.sum(axis=1, keepdims=True)
    vocabs = [_vocabulary(v, config.title_zipf) for v in vocab_specs]
    genre_weight = weight @ profiles
    naming = np.minimum(1.0, config.title_naming * np.asarray(naming))
    loose_cw = _cum(np.where(families == "mood", weight * naming, 0.0))
    return Tastes(tuple(names), weight, np.cumsum(profiles, axis=1), np.cumsum(aff, axis=1),
                  tuple(v[0] for v in vocabs), tuple(v[1] for v in vocabs), tuple(_emoji_split(e) for e in emojis),
                  genre_weight / genre_weight.sum(), naming, loose_cw)


def _emoji_split(text: str) -> tuple[str, ...]:
    """Emojis of a string, a variation selector staying with its emoji ("❤️" is two code points)."""
    out: list[str] = []
    for ch in text:
        if ch == "\ufe0f" and out:
            out[-1] += ch
        else:
            out.append(ch)
    return tuple(out)


def _vocabulary(spec: str, zipf: float) -> tuple[tuple[str, ...], np.ndarray]:
    """Titles with Zipf weights by position, or an explicit "=w" weight (relative to the first)."""
    titles, weights = [], []
    for i, part in enumerate(spec.split("|")):
        title, _, w = part.partition("=")
        titles.append(title)
        weights.append(float(w) if w else (i + 1.0) ** -zipf)
    return tuple(titles), _cum(np.asarray(weights))


def _cum(w: np.ndarray) -> np.ndarray:
    c = np.cumsum(w, dtype=np.float64)
    return c / c[-1]


# ---- world -----------------------------------------------------------------------------------
@dataclass
class World:
    """The catalogue. Artists are grouped by genre then scene. An artist's tracks are the ids
    art_track[a] + k, k = 0.. in falling popularity, cut into albums of art_album_size[a]
    tracks; keeping tracks implicit lets the catalogue be as deep as the real one for free."""

    salt: int
    genre_art: np.ndarray  # int64 [G+1] artist range per genre
    genre_scene: np.ndarray  # int64 [G+1] scene range per genre
    scene_art: np.ndarray  # int64 [S+1] artist range per scene
    scene_cw: np.ndarray  # float64 [S] global cumulative scene choice weight
    art_cw: np.ndarray  # float64 [A] global cumulative artist weight
    art_track: np.ndarray  # int64 [A+1] track id range per artist
    art_album: np.ndarray  # int64 [A+1] album id range per artist
    art_album_size: np.ndarray  # int64 [A]
    art_key: np.ndarray  # int64 [A] identity behind the uri (the Various Artists share one)
    art_q: np.ndarray  # float64 [A] within-artist track popularity ~ (k + art_q) ** -track_zipf
    track_zipf: float
    hit_track: np.ndarray  # int64 [H] the most played tracks anywhere
    hit_artist: np.ndarray  # int64 [H]
    hit_cw: np.ndarray  # float64 [H] cumulative, normalised

    @property
    def n_tracks(self) -> int:
        return int(self.art_track[-1])

    @property
    def various_artists(self) -> int:
        return len(self.art_key)

    def track_artist(self, track: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.art_track, track, side="right") - 1

    def track_album(self, track: np.ndarray, artist: np.ndarray | None = None) -> np.ndarray:
        artist = self.track_artist(track) if artist is None else artist
        return self.art_album[artist] + (track - self.art_track[artist]) // self.art_album_size[artist]

    def track_duration(self, track: np.ndarray) -> np.ndarray:
        """ms, log-normal around 3.6 minutes, fixed per track by its id."""
        h = _mix64(np.asarray(track, dtype=np.uint64), self.salt ^ 0xD0)
        u = [((h >> np.uint64(16 * i)) & np.uint64(0xFFFF)).astype(np.float64) / 65536.0 for i in range(4)]
        z = (sum(u) - 2.0) * np.sqrt(3.0)  # Irwin-Hall: close to a standard normal
        return np.clip(np.exp(np.log(215_000) + 0.28 * z), 30_000, 1_200_000).astype(np.int64)


def build_world(seed: int, n_playlists: int, config: SynthConfig = SynthConfig()) -> World:
    """The catalogue for a dataset; identical for every size up to WORLD_PLAYLISTS playlists."""
    return _build_world(seed, max(n_playlists, WORLD_PLAYLISTS), config)


@functools.lru_cache(maxsize=2)
def _build_world(seed: int, world_playlists: int, cfg: SynthConfig) -> World:
    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    ts = tastes(cfg)
    grow = world_playlists / WORLD_PLAYLISTS
    share = ts.genre_weight ** 0.7
    n_art = np.maximum(300, np.round(cfg.n_artists * grow ** cfg.world_growth * share / share.sum())).astype(np.int64)
    genre_art = np.concatenate([[0], np.cumsum(n_art)])
    n_a = int(genre_art[-1])
    art_genre = np.repeat(np.arange(len(n_art)), n_art)
    local = np.arange(n_a) - genre_art[art_genre]  # popularity rank inside the genre
    # broken power law: a flat head of stars, then a steep tail of rarely played artists
    brk = np.maximum(10.0, cfg.artist_break * n_art / n_art.max())[art_genre]
    art_w = np.where(local < brk, (local + 1.0) ** -cfg.artist_head,
                     brk ** (cfg.artist_tail - cfg.artist_head) * (local + 1.0) ** -cfg.artist_tail)
    art_w = art_w / np.add.reduceat(art_w, genre_art[:-1])[art_genre]  # share inside the genre
    n_scene = np.maximum(1, n_art // cfg.artists_per_scene)
    genre_scene = np.concatenate([[0], np.cumsum(n_scene)])
    # the first artists (scene_stars rounds of them) are dealt over the scenes, so no scene is empty
    # and each holds that many of the genre's head artists; the other ranks are spread at random
    random_scene = (rng.random(n_a) * n_scene[art_genre]).astype(np.int64)
    first_fill = rng.permutation(n_a) % n_scene[art_genre]
    scene = genre_scene[art_genre] + np.where(local < cfg.scene_stars * n_scene[art_genre], first_fill, random_scene)
    order = np.argsort(scene, kind="stable")  # group by scene; genres stay contiguous
    art_w, scene, local = art_w[order], scene[order], local[order]
    n_s = int(genre_scene[-1])
    scene_art = np.concatenate([[0], np.cumsum(np.bincount(scene, minlength=n_s))])
    scene_w = np.bincount(scene, weights=art_w, minlength=n_s)
    # catalogue depth grows with the plays an artist gets, so deep cuts keep appearing
    plays = art_w * ts.genre_weight[art_genre] * 66e6 * grow
    n_tr = np.minimum(cfg.tracks_cap, 1 + np.ceil(cfg.tracks_scale * plays ** cfg.tracks_power
                                                  * rng.lognormal(0, 0.5, n_a))).astype(np.int64)
    art_track = np.concatenate([[0], np.cumsum(n_tr)])
    album_size = np.where(n_tr <= 3, n_tr, 1 + rng.poisson(cfg.album_size - 1, n_a))
    album_size = np.clip(album_size, 1, n_tr)
    n_alb = -(-n_tr // album_size)
    art_album = np.concatenate([[0], np.cumsum(n_alb)])
    art_key = np.arange(n_a, dtype=np.int64)
    # the compilation genres each have a "Various Artists" near their top, sharing the MPD's uri
    for gname in ("christmas", "disney", "broadway", "kids", "classical", "oldies"):
        g = ts.names.index(gname)
        lo = genre_art[g]
        art_key[lo + int(np.flatnonzero(local[lo:genre_art[g + 1]] == 7)[0])] = n_a
    art_q = cfg.track_q0 + cfg.track_q1 * (plays / 1e4) ** cfg.track_q_power
    # global hits: the top tracks of the most played artists
    top_art = np.argpartition(-plays, 20_000)[:20_000]
    k = np.arange(20)
    q = art_q[top_art, None]
    z = (k[None, :] + q) ** -cfg.track_zipf
    zt = _zipf_total(n_tr[top_art, None], q, cfg.track_zipf)
    cand_w = (plays[top_art, None] * z / zt) * (k[None, :] < n_tr[top_art, None])
    best = np.argpartition(-cand_w.ravel(), cfg.n_hits)[:cfg.n_hits]
    hit_ids = art_track[top_art[best // 20]] + best % 20
    order = np.argsort(hit_ids)
    hit_track, hit_w, hit_artist = hit_ids[order], cand_w.ravel()[best][order], top_art[best // 20][order]
    salt = int(rng.integers(1, 2**62))
    log.info("world: %d genres, %d scenes, %d artists, %d albums, %d tracks (%.1fs)",
             len(n_art), n_s, n_a, int(art_album[-1]), int(art_track[-1]), time.perf_counter() - t0)
    return World(salt, genre_art, genre_scene, scene_art, np.cumsum(np.maximum(scene_w, 1e-300) ** cfg.scene_power),
                 np.cumsum(art_w), art_track, art_album,
                 album_size.astype(np.int64), art_key, art_q, cfg.track_zipf, hit_track, hit_artist,
                 _cum(hit_w ** cfg.hit_power))


def _zipf_total(n: np.ndarray, q: np.ndarray, s: float) -> np.ndarray:
    """Integral of (x + q) ** -s over [0, n): the normaliser of the continuous track Zipf."""
    return (q ** (1 - s) - (n + q) ** (1 - s)) / (s - 1)


def _zipf_rank(n: np.ndarray, q: np.ndarray, s: float, u: np.ndarray) -> np.ndarray:
    """Rank k in [0, n) with density ~ (k + q) ** -s, by inverting the continuous CDF."""
    a = q ** (1 - s)
    x = (a - u * (a - (n + q) ** (1 - s))) ** (1 / (1 - s)) - q
    return np.minimum(x.astype(np.int64), n - 1)


def _pick(cw: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index in [lo, hi) drawn by the weights whose global cumulative sum is `cw`.

    Queries are searched in sorted order: far faster on a large array (cache locality)."""
    base = np.where(lo > 0, cw[np.maximum(lo - 1, 0)], 0.0)
    target = base + u * (cw[hi - 1] - base)
    order = np.argsort(target)
    out = np.empty(len(target), dtype=np.int64)
    out[order] = np.searchsorted(cw, target[order], side="right")
    return np.clip(out, lo, hi - 1)


def _rows_pick(cw_rows: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column drawn from each given row of a row-wise cumulative matrix."""
    return np.minimum((cw_rows[rows] < u[:, None]).sum(axis=1), cw_rows.shape[1] - 1)


# ---- playlists -------------------------------------------------------------------------------
@dataclass
class SliceData:
    """One slice's playlists as columns; `indptr` delimits each playlist's entries."""

    indptr: np.ndarray  # int64 [P+1]
    track: np.ndarray  # int64 [N]
    taste: np.ndarray  # int64 [P] main taste
    taste2: np.ndarray  # int64 [P] secondary taste
    names: list[str]
    descriptions: list[str | None]
    collaborative: np.ndarray  # bool [P]
    modified_at: np.ndarray  # int64 [P]
    num_followers: np.ndarray  # int64 [P]
    num_edits: np.ndarray  # int64 [P]


def sample_slice(world: World, rng: np.random.Generator, n: int, config: SynthConfig = SynthConfig()) -> SliceData:
    """n playlists passing the MPD selection rules (candidates failing them are dropped)."""
    parts = []
    need = n
    while need > 0:
        cand = _candidates(world, rng, need + max(8, need // 20), config)
        ok = np.flatnonzero(cand["valid"])[:need]
        parts.append(_take(cand, ok))
        need -= len(ok)
    pl = {k: np.concatenate([p[k] for p in parts]) for k in ("taste", "taste2")}
    lengths = np.concatenate([p["lengths"] for p in parts])
    track = np.concatenate([p["track"] for p in parts])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    names, descriptions = _titles(rng, pl["taste"], pl["taste2"], config)
    num_edits = np.maximum(1, np.round(rng.lognormal(np.log(2 + lengths / 5), 0.6))).astype(np.int64)
    followers = 1 + np.minimum(100_000, np.floor(0.4 * (rng.random(n) ** (-1 / 1.1) - 1))).astype(np.int64)
    days = _LAST_DAY - np.minimum(rng.exponential(330, n), _LAST_DAY - _FIRST_DAY).astype(np.int64)
    return SliceData(indptr, track, pl["taste"], pl["taste2"], names, descriptions,
                     rng.random(n) < config.p_collaborative, days * _DAY, followers, num_edits)


def _take(cand: dict, ok: np.ndarray) -> dict:
    lengths = cand["lengths"][ok]
    starts = cand["indptr"][ok]
    idx = np.repeat(starts - np.cumsum(np.concatenate([[0], lengths[:-1]])), lengths) + np.arange(lengths.sum())
    return {"taste": cand["taste"][ok], "taste2": cand["taste2"][ok], "lengths": lengths,
            "track": cand["track"][idx]}


def _candidates(w: World, rng: np.random.Generator, n: int, cfg: SynthConfig) -> dict:
    ts = tastes(cfg)
    # per playlist: target length, tastes, scenes and habits
    length = np.full(n, 10**6)
    while (bad := length > 250).any():
        length[bad] = 5 + np.round(rng.gamma(cfg.length_shape, cfg.length_scale, bad.sum())).astype(np.int64)
    t1 = np.minimum(np.searchsorted(_cum(ts.weight), rng.random(n), side="right"), len(ts.weight) - 1)
    t2 = _rows_pick(ts.affinity_cw, t1, rng.random(n))
    s1 = _scene_of(w, _rows_pick(ts.profile_cw, t1, rng.random(n)), rng.random(n))
    s2 = _scene_of(w, _rows_pick(ts.profile_cw, t2, rng.random(n)), rng.random(n))
    drift0 = 0.12 * rng.random(n)
    drift1 = rng.beta(1.2, 1.2 * (1 - cfg.drift) / cfg.drift, n) * (rng.random(n) < 0.8)
    cont = rng.beta(1.0, (1 - cfg.p_continue) / cfg.p_continue, n)
    album_run = rng.beta(0.6, 0.6 * (1 - cfg.p_album_run) / cfg.p_album_run, n)
    p_hit = rng.beta(1.5, 1.5 * (1 - cfg.p_hit) / cfg.p_hit, n)
    habits = {"length": length, "t1": t1, "t2": t2, "s1": s1, "s2": s2, "drift0": drift0, "drift1": drift1,
              "cont": cont, "album_run": album_run, "p_hit": p_hit}
    if cfg.p_niche > 0:  # (drawn only then: profiles without niche playlists keep their exact random stream)
        habits["niche"] = rng.random(n) < cfg.p_niche
    # entries come in rounds: duplicates are dropped and short playlists get more entries
    pl, track, artist = (np.zeros(0, dtype=np.int64) for _ in range(3))
    next_j = np.zeros(n, dtype=np.int64)
    repeats = (rng.random(n) < cfg.p_repeat) * rng.integers(1, 3, n)
    need = length.copy()
    for over in (1.25, 2.0, 3.0, 4.0):
        rows = np.flatnonzero(need > 0)
        if not len(rows):
            break
        n_e = np.ceil(need[rows] * over).astype(np.int64) + 4
        r_pl, r_track, r_art = _entries(w, rng, habits, rows, n_e, next_j[rows], cfg)
        next_j[rows] += n_e
        old = np.concatenate([np.ones(len(pl), dtype=bool), np.zeros(len(r_pl), dtype=bool)])
        pl, track = np.concatenate([pl, r_pl]), np.concatenate([track, r_track])
        artist = np.concatenate([artist, r_art])
        order = np.argsort(pl, kind="stable")
        pl, track, artist, old = pl[order], track[order], artist[order], old[order]
        # the first occurrence of a track stays; a few playlists keep a repeat or two, as real ones do
        _, first_idx = np.unique(pl * w.n_tracks + track, return_index=True)
        keep = old.copy()
        keep[first_idx] = True
        dup = np.flatnonzero(~keep)
        dup_rank = np.arange(len(dup)) - np.searchsorted(pl[dup], pl[dup], side="left")
        kept_dup = dup[dup_rank < repeats[pl[dup]]]
        keep[kept_dup] = True
        repeats -= np.bincount(pl[kept_dup], minlength=n)
        kpl = pl[keep]
        pos = np.arange(len(kpl)) - np.searchsorted(kpl, kpl, side="left")
        keep[np.flatnonzero(keep)[pos >= length[kpl]]] = False
        pl, track, artist = pl[keep], track[keep], artist[keep]
        need = length - np.bincount(pl, minlength=n)
    lengths = np.bincount(pl, minlength=n)
    n_art = _distinct_per_row(pl, w.art_key[artist], n)
    n_alb = _distinct_per_row(pl, w.track_album(track, artist), n)
    valid = (lengths >= 5) & (lengths <= 250) & (n_art >= 3) & (n_alb >= 2)
    return {"valid": valid, "taste": t1, "taste2": t2, "lengths": lengths,
            "indptr": np.concatenate([[0], np.cumsum(lengths)]), "track": track}


def _entries(w: World, rng: np.random.Generator, h: dict, rows: np.ndarray, n_e: np.ndarray, j0: np.ndarray,
             cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n_e[i] entries for candidate playlist rows[i], at positions j0[i].. (playlist, track, artist)."""
    ts = tastes(cfg)
    n_g = len(w.genre_art) - 1
    e_ptr = np.concatenate([[0], np.cumsum(n_e)])
    total = int(e_ptr[-1])
    idx = np.repeat(np.arange(len(rows)), n_e)
    pl = rows[idx]
    j = np.arange(total) - e_ptr[idx] + j0[idx]
    new_seg = (rng.random(total) >= h["cont"][pl]) | (np.arange(total) == e_ptr[idx])
    seg = np.cumsum(new_seg) - 1
    seg_first = np.flatnonzero(new_seg)
    n_seg = len(seg_first)
    sp = pl[seg_first]
    x = np.minimum(j[seg_first] / h["length"][sp], 1.0)
    second = rng.random(n_seg) < h["drift0"][sp] + h["drift1"][sp] * x
    taste = np.where(second, h["t2"][sp], h["t1"][sp])
    scene = np.where(second, h["s2"][sp], h["s1"][sp])
    is_hit = rng.random(n_seg) < h["p_hit"][sp]
    niche = h["niche"][sp] if "niche" in h else np.zeros(n_seg, dtype=bool)
    is_hit &= ~niche
    is_scene = ~is_hit & (rng.random(n_seg) < cfg.p_scene) & ~niche
    genre = np.minimum(_rows_pick(ts.profile_cw, taste, rng.random(n_seg)), n_g - 1)
    lo = np.where(is_scene, w.scene_art[scene], w.genre_art[genre])
    hi = np.where(is_scene, w.scene_art[scene + 1], w.genre_art[genre + 1])
    artist = _pick(w.art_cw, lo, hi, rng.random(n_seg))
    hit = np.minimum(np.searchsorted(w.hit_cw, rng.random(n_seg), side="right"), len(w.hit_cw) - 1)
    artist = np.where(is_hit, w.hit_artist[hit], artist)
    hit = w.hit_track[hit]
    n_tr = w.art_track[artist + 1] - w.art_track[artist]
    q = w.art_q[artist]
    anchor = np.where(is_hit, hit - w.art_track[artist], _zipf_rank(n_tr, q, w.track_zipf, rng.random(n_seg)))
    album_mode = ~is_hit & (rng.random(n_seg) < h["album_run"][sp])
    size = w.art_album_size[artist]
    # a segment's first entry is its anchor; later ones walk through the album or redraw
    k = np.arange(total) - seg_first[seg]
    redraw = _zipf_rank(n_tr[seg], q[seg], w.track_zipf, rng.random(total))
    if "niche" in h:  # deep cuts: any track of the artist's catalogue, popular or not
        anchor = np.where(niche, (rng.random(n_seg) * n_tr).astype(np.int64), anchor)
        redraw = np.where(niche[seg], (rng.random(total) * n_tr[seg]).astype(np.int64), redraw)
    # an album run stops at the album's end (later entries of the segment redraw)
    walk = anchor[seg] + k
    in_album = album_mode[seg] & (walk < np.minimum((anchor // size + 1) * size, n_tr)[seg])
    rank = np.where(k == 0, anchor[seg], np.where(in_album, walk, redraw))
    return pl, w.art_track[artist][seg] + rank, artist[seg]


def _scene_of(w: World, genre: np.ndarray, u: np.ndarray) -> np.ndarray:
    return _pick(w.scene_cw, w.genre_scene[genre], w.genre_scene[genre + 1], u)


def _distinct_per_row(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Distinct values per row (sorting beats np.unique's hashing on wide int keys)."""
    width = int(values.max(initial=0)) + 1
    key = np.sort(rows * width + values)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return np.bincount(key[first] // width, minlength=n)


# ---- titles ----------------------------------------------------------------------------------
_GENERIC_TITLES = tuple(p.rsplit(":", 1)[0] for p in _GENERIC.split("|"))
_GENERIC_CW = _cum(np.array([float(p.rsplit(":", 1)[1]) for p in _GENERIC.split("|")]))
_PUNCT = ("!", "!!", "!!!", "!!!!", ".", "..", "...", "~", "~~", "*", " :)", " ;)", " (:", " !!", " !", "$",
          "^^", " :", "*~", "!!!!!")  # all vanish under normalisation


def _titles(rng: np.random.Generator, t1: np.ndarray, t2: np.ndarray,
            cfg: SynthConfig) -> tuple[list[str], list[str | None]]:
    """Raw titles per playlist: taste vocabulary, generic or personal, then user noise.

    Loose and rare titles draw from a stream of their own (spawned: the slice's stream is not
    advanced), so they change no other column and leave profiles without them as they were.
    """
    ts = tastes(cfg)
    n = len(t1)
    own = rng.spawn(1)[0]
    u = rng.random(n)
    p_taste = ts.naming[t1]
    kind = np.where(u < p_taste, 0, np.where(u < p_taste + (1 - p_taste) * cfg.p_title_generic, 1, 2))
    src = np.where(rng.random(n) < cfg.p_title_secondary, t2, t1)
    loose = own.random(n) < cfg.p_title_loose
    mood = np.minimum(np.searchsorted(ts.loose_cw, own.random(n), side="right"), len(ts.names) - 1)
    src = np.where(loose, mood, src)
    rare = (kind == 2) & (own.random(n) < cfg.p_title_rare)
    rare_index = np.minimum(cfg.rare_head * (own.random(n) ** (-1 / cfg.personal_alpha) - 1), 2.0**52)
    rare_code = _mix64(rare_index.astype(np.int64), 0xA11CE)
    r_vocab, r_generic = rng.random(n), rng.random(n)
    personal = cfg.personal_head * (rng.random(n) ** (-1 / cfg.personal_alpha) - 1)
    personal = np.minimum(personal, 2.0**52).astype(np.int64)
    case = np.searchsorted([0.55, 0.80, 0.88], rng.random(n), side="right")
    noise = rng.random((n, 6))
    picks = rng.integers(0, 2**31, size=(n, 4))
    desc = rng.random(n) < cfg.p_description
    names, descriptions = [], []
    vocab = _rows_pick(_padded(ts.title_cw), src, r_vocab)
    generic = np.minimum(np.searchsorted(_GENERIC_CW, r_generic, side="right"), len(_GENERIC_TITLES) - 1)
    for i in range(n):
        if kind[i] == 0:
            base = ts.titles[src[i]][min(vocab[i], len(ts.titles[src[i]]) - 1)]
        elif kind[i] == 1:
            base = _GENERIC_TITLES[generic[i]]
        elif rare[i]:
            base = _rare_title(int(rare_code[i]))
        else:
            base = _personal_title(int(personal[i]))
        emo = ts.emojis[t1[i]]
        names.append(_noisy(base, int(case[i]), noise[i], picks[i], emo, cfg))
        descriptions.append(_description(base, emo, int(picks[i, 3])) if desc[i] else None)
    return names, descriptions


def _padded(rows: tuple[np.ndarray, ...]) -> np.ndarray:
    """Cumulative rows of different lengths as one matrix, padded with values no draw reaches."""
    out = np.full((len(rows), max(len(r) for r in rows)), 2.0)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _personal_title(k: int) -> str:
    """The k-th title of an unbounded personal pool; low k are common ("sarah", "car")."""
    h = int(_mix64(np.array([k], dtype=np.uint64), 0x5EED)[0])
    form = h % 12
    h >>= 4
    a = _FIRST_NAMES[h % len(_FIRST_NAMES)]
    h //= len(_FIRST_NAMES)
    w1 = _THEME_WORDS[h % len(_THEME_WORDS)]
    h //= len(_THEME_WORDS)
    w2 = _THEME_WORDS[h % len(_THEME_WORDS)]
    h //= len(_THEME_WORDS)
    b = _FIRST_NAMES[h % len(_FIRST_NAMES)]
    h //= len(_FIRST_NAMES)
    month, year = _MONTHS[h % 12], 2010 + (h // 12) % 8
    return (a, f"{a}'s playlist", f"for {a}", w1, f"{w1} {w2}", f"{a} & {b}", f"{w1} songs", month,
            f"{month} {year}", f"{w1} {year}", f"{a}'s {w1}", f"{w1} mix")[form]


def _rare_title(h: int) -> str:
    """The title of hash h in a deep pool (nicknames, inside jokes, names and words with a number):
    short like the common ones, but with so many forms (~1e16) that distinct hashes rarely meet,
    so a title repeats only where its pool index does."""
    picks = []
    for size in (len(_SYLLABLES),) * 3 + (2, len(_FIRST_NAMES), len(_THEME_WORDS), len(_THEME_WORDS), 99, 6):
        h, r = divmod(h, size)
        picks.append(r)
    s1, s2, s3, long_nick, a, w1, w2, num, form = picks
    nick = _SYLLABLES[s1] + _SYLLABLES[s2] + (_SYLLABLES[s3] if long_nick else "")
    a, w1, w2, num = _FIRST_NAMES[a], _THEME_WORDS[w1], _THEME_WORDS[w2], num + 1
    return (nick, f"{a}{num}", f"{w1}{num}", f"{w1} {w2}", f"{nick} {w1}", f"{a}'s {w1} {w2}")[form]


def _noisy(base: str, case: int, r: np.ndarray, picks: np.ndarray, emo: tuple[str, ...], cfg: SynthConfig) -> str:
    """User noise: most of it vanishes under normalisation (case, punctuation), some does not."""
    s = base
    if r[0] < cfg.p_typo and len(s) > 3 and s.isascii():  # typo: swap two neighbours
        p = int(picks[0]) % (len(s) - 1)
        s = s[:p] + s[p + 1] + s[p] + s[p + 2:]
    if r[1] < cfg.p_stretch and s[-1:].isalpha():  # stretched last letter
        s = s + s[-1] * (1 + int(picks[1]) % 4)
    if case == 1:
        s = " ".join(w[:1].upper() + w[1:] for w in s.split(" "))
    elif case == 2:
        s = s.upper()
    elif case == 3:
        s = s[:1].upper() + s[1:]
    if r[2] < cfg.p_punct:
        s = s + _PUNCT[int(picks[2]) % len(_PUNCT)]
        if r[2] < cfg.p_punct / 5:
            wraps = ("#" + s, s.replace(" ", "_"), s.replace(" ", "."), "~" + s + "~", "*" + s, "(" + s + ")")
            s = wraps[int(picks[2] >> 8) % len(wraps)]
    if r[3] < cfg.p_emoji:  # emoji of the playlist's taste
        e = emo[int(picks[3]) % len(emo)] * (1 + int(picks[3] >> 8) % 3)
        s = f"{e} {s}" if r[4] < 0.2 else f"{s} {e}"
    if r[5] < 0.01:
        s = f" {s}  "
    return s


_DESCRIPTIONS = ("songs for {0}", "my favorite {0} songs", "the best {0} tracks {1}", "{0} {1}",
                 "for when you need {0}", "updated weekly. {0}", "{1}{1}{1}")


def _description(base: str, emo: tuple[str, ...], pick: int) -> str:
    return _DESCRIPTIONS[pick % len(_DESCRIPTIONS)].format(base, emo[(pick >> 4) % len(emo)])


# ---- names and uris --------------------------------------------------------------------------
def _mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64: a random-looking but fixed 64-bit code per id."""
    z = x.astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_ID_BITS = 40  # ids of every kind stay below 2 ** 40


def uris(ids: np.ndarray, salt: int) -> list[str]:
    """22-character base62 ids: 15 hashed digits, then 7 encoding a bijection of the id, so
    distinct ids always get distinct uris."""
    ids = np.asarray(ids, dtype=np.uint64)
    if len(ids) and int(ids.max()) >> _ID_BITS:
        raise PipelineError(f"synthetic catalogue too large for its uri scheme ({int(ids.max())} ids)")
    with np.errstate(over="ignore"):
        lo = (ids * np.uint64(0xD1B54A32D192ED03) + np.uint64(salt)) & np.uint64((1 << _ID_BITS) - 1)
    h1, h2 = _mix64(ids, salt), _mix64(ids, salt ^ 0x5A5A)
    six = np.uint64(63)
    cols = [(h1 >> np.uint64(6 * i)) & six for i in range(10)] + [(h2 >> np.uint64(6 * i)) & six for i in range(5)]
    digits = [c.astype(np.int64) % 62 for c in cols]
    x = lo.astype(np.float64)  # < 2 ** 53: exact in floating point, and much faster than uint64 division
    for _ in range(7):
        q = np.floor(x / 62.0)
        digits.append((x - 62.0 * q).astype(np.int64))
        x = q
    text = _B62[np.stack(digits, axis=1)].tobytes().decode("ascii")
    return [text[i:i + 22] for i in range(0, len(text), 22)]


_TABLE_BITS = 16


@functools.lru_cache(maxsize=1)
def _name_tables() -> tuple[list[str], list[str], list[str]]:
    """Fixed tables of artist, track and album names; an item's hash picks its entry.

    Names never contain quotes or backslashes, so the JSON writer can splice them in as they are.
    """
    rng = np.random.default_rng(20180101)
    size = 1 << _TABLE_BITS
    syl, words, first = _SYLLABLES, _SONG_WORDS, _FIRST_NAMES

    def pseudo(n: int) -> str:
        return "".join(syl[i] for i in rng.integers(len(syl), size=n)).capitalize()

    def word() -> str:
        return words[rng.integers(len(words))].capitalize()

    def phrase(n: int) -> str:
        return " ".join(word() for _ in range(n))

    artist_forms = (lambda: pseudo(2), lambda: pseudo(3), lambda: f"{pseudo(2)} {pseudo(3)}",
                    lambda: f"{first[rng.integers(len(first))].capitalize()} {pseudo(3)}",
                    lambda: f"The {word()} {pseudo(2)}s", lambda: f"Lil {pseudo(2)}", lambda: f"DJ {pseudo(2)}",
                    lambda: f"{word()} {word()}")
    suffixes = ("", "", "", "", "", "", "", "", " - Remix", " - Live", " - Acoustic", " - Radio Edit",
                " - Remastered", " - Original Mix")
    album_forms = (lambda: phrase(1), lambda: phrase(1), lambda: phrase(2), lambda: phrase(3), lambda: "Greatest Hits",
                   lambda: f"{phrase(1)} (Deluxe Edition)", lambda: f"Vol. {rng.integers(1, 10)}",
                   lambda: f"The {phrase(1)} EP", lambda: f"Live at the {phrase(1)}", lambda: f"Songs for {phrase(1)}")
    artists = [artist_forms[rng.integers(len(artist_forms))]() for _ in range(size)]
    tracks = []
    for _ in range(size):
        name = phrase(int(rng.integers(1, 5)))
        r = rng.random()
        tracks.append(name + (f" (feat. {pseudo(2)})" if r < 0.08 else suffixes[rng.integers(len(suffixes))]))
    albums = [album_forms[rng.integers(len(album_forms))]() for _ in range(size)]
    return artists, tracks, albums


def _names(ids: np.ndarray, salt: int, table: list[str]) -> list[str]:
    pick = (_mix64(np.asarray(ids, dtype=np.uint64), salt) >> np.uint64(64 - _TABLE_BITS)).astype(np.int64)
    return [table[i] for i in pick.tolist()]


# ---- JSON ------------------------------------------------------------------------------------
_POS = [f'{{"pos": {p}' for p in range(300)]


def render_slice(world: World, data: SliceData, first_pid: int) -> str:
    """The slice file's text in the MPD schema (SPEC section 1), keys in the MPD's order."""
    uniq, inv = np.unique(data.track, return_inverse=True)
    art = world.track_artist(uniq)
    keys = world.art_key[art]
    alb = world.track_album(uniq, art)
    n_va = world.various_artists
    dumps = json.dumps
    artist_t, track_t, album_t = _name_tables()
    is_va = keys == n_va
    dur = world.track_duration(uniq)
    a_uri = uris(keys, world.salt ^ 2)
    a_name = _names(keys, world.salt ^ 2, artist_t)
    for i in np.flatnonzero(is_va).tolist():
        a_uri[i], a_name[i] = VARIOUS_ARTISTS_ID, "Various Artists"
    frags = [f', "artist_name": "{an}", "track_uri": "spotify:track:{tu}", "artist_uri": "spotify:artist:{au}", '
             f'"track_name": "{tn}", "album_uri": "spotify:album:{bu}", "duration_ms": {d}, "album_name": "{bn}"}}'
             for an, tu, au, tn, bu, d, bn in zip(
                 a_name, uris(uniq, world.salt ^ 1), a_uri, _names(uniq, world.salt ^ 1, track_t),
                 uris(alb, world.salt ^ 3), dur.tolist(), _names(alb, world.salt ^ 3, album_t))]
    entry = [frags[i] for i in inv.tolist()]
    ptr = data.indptr.tolist()
    n_albums = _distinct_per_row(np.repeat(np.arange(len(ptr) - 1), np.diff(ptr)), alb[inv], len(ptr) - 1)
    n_artists = _distinct_per_row(np.repeat(np.arange(len(ptr) - 1), np.diff(ptr)), keys[inv], len(ptr) - 1)
    duration = np.add.reduceat(dur[inv], data.indptr[:-1])
    rows = []
    for i in range(len(ptr) - 1):
        lo, hi = ptr[i], ptr[i + 1]
        tracks = ", ".join([p + f for p, f in zip(_POS, entry[lo:hi])])
        desc = f', "description": {dumps(data.descriptions[i])}' if data.descriptions[i] is not None else ""
        rows.append(
            f'{{"name": {dumps(data.names[i])}, "collaborative": "{"true" if data.collaborative[i] else "false"}", '
            f'"pid": {first_pid + i}, "modified_at": {data.modified_at[i]}, "num_tracks": {hi - lo}, '
            f'"num_albums": {n_albums[i]}, "num_followers": {data.num_followers[i]}, "num_edits": {data.num_edits[i]}, '
            f'"duration_ms": {duration[i]}, "num_artists": {n_artists[i]}{desc}, "tracks": [{tracks}]}}')
    last = first_pid + len(rows) - 1
    info = f'{{"generated_on": "synthetic", "slice": "{first_pid}-{last}", "version": "v1"}}'
    return '{"info": ' + info + ', "playlists": [\n' + ",\n".join(rows) + "\n]}\n"


# ---- driver ----------------------------------------------------------------------------------
def slice_bounds(n_playlists: int) -> list[tuple[int, int]]:
    """(first pid, count) per slice: 1,000 playlists each, the last one possibly shorter."""
    return [(a, min(SLICE_SIZE, n_playlists - a)) for a in range(0, n_playlists, SLICE_SIZE)]


def slice_name(first_pid: int, count: int) -> str:
    return f"mpd.slice.{first_pid}-{first_pid + count - 1}.json"


def make_slice(n_playlists: int, seed: int, index: int, config: SynthConfig = SynthConfig()) -> tuple[SliceData, World]:
    """Slice `index` of a dataset; depends only on (seed, index) and the world."""
    world = build_world(seed, n_playlists, config)
    first, count = slice_bounds(n_playlists)[index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, index]))
    return sample_slice(world, rng, count, config), world


def slice_text(n_playlists: int, seed: int, index: int, config: SynthConfig = SynthConfig()) -> str:
    data, world = make_slice(n_playlists, seed, index, config)
    return render_slice(world, data, slice_bounds(n_playlists)[index][0])


def generate(n_playlists: int, seed: int, config: SynthConfig = SynthConfig()) -> Iterator[list[dict]]:
    """The dataset's playlists as MPD dicts, one list per slice (exactly what write_mpd writes)."""
    _check_args(n_playlists, seed)
    for index in range(len(slice_bounds(n_playlists))):
        yield json.loads(slice_text(n_playlists, seed, index, config))["playlists"]


def _write_one(job: tuple[Path, int, int, int, SynthConfig]) -> int:
    out, n_playlists, seed, index, config = job
    first, count = slice_bounds(n_playlists)[index]
    text = slice_text(n_playlists, seed, index, config)
    with atomic_path(out / slice_name(first, count)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return len(text)


def write_mpd(out: str | Path, n_playlists: int = 20_000, seed: int = 0, workers: int | None = None,
              config: SynthConfig = SynthConfig()) -> list[Path]:
    """Write the dataset as MPD slices into `out`; stale slice files there are removed."""
    _check_args(n_playlists, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"{out}: cannot create directory ({exc.strerror or exc})") from None
    bounds = slice_bounds(n_playlists)
    wanted = {slice_name(a, c) for a, c in bounds}
    stale = [p for p in out.iterdir() if _SLICE_NAME.match(p.name) and p.name not in wanted]
    for p in stale:
        p.unlink()
    if stale:
        log.warning("%s: removed %d slice files of an earlier dataset", out, len(stale))
    t0 = time.perf_counter()
    build_world(seed, n_playlists, config)  # built once before forking, shared by the workers
    jobs = [(out, n_playlists, seed, i, config) for i in range(len(bounds))]
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    if "fork" not in mp.get_all_start_methods():  # workers share the world by forking
        workers = 1
    n_bytes = 0
    bar = tqdm(total=len(jobs), desc="synthetic MPD slices", unit="slice", disable=len(jobs) < 20)
    if workers == 1:
        for job in jobs:
            n_bytes += _write_one(job)
            bar.update()
    else:
        with mp.get_context("fork").Pool(workers) as pool:
            for size in pool.imap(_write_one, jobs, chunksize=1):
                n_bytes += size
                bar.update()
    bar.close()
    log.info("wrote %d playlists in %d slices to %s (%.0f MB, %.1fs, %d workers)", n_playlists, len(jobs), out,
             n_bytes / 1e6, time.perf_counter() - t0, workers)
    return [out / slice_name(a, c) for a, c in bounds]


def _check_args(n_playlists: int, seed: int) -> None:
    if type(n_playlists) is not int or not 1 <= n_playlists <= MAX_PLAYLISTS:
        raise PipelineError(f"--playlists must be an integer in 1..{MAX_PLAYLISTS}, got {n_playlists!r}")
    if type(seed) is not int or not 0 <= seed < 2**32:
        raise PipelineError(f"--seed must be an integer in 0..{2**32 - 1}, got {seed!r}")


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one PipelineError line instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PipelineError(message)


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="python -m preprocess.synthetic", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the mpd.slice.*.json files")
    ap.add_argument("--playlists", type=int, default=20_000, help="number of playlists (default 20000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: up to 2)")
    ap.add_argument("--profile", default=DEFAULT_PROFILE,
                    help=f"generator profile: {', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    args = ap.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise PipelineError(f"--workers must be >= 1, got {args.workers}")
    write_mpd(args.out, args.playlists, args.seed, workers=args.workers, config=synth_config(args.profile))
    return 0


if __name__ == "__main__":
    run_cli(main)
