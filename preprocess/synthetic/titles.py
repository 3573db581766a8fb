"""Playlist titles and descriptions, a weak-to-medium signal on purpose: the taste's vocabulary,
generic or personal titles, then user noise, most of which normalisation removes and some of which
it does not."""
from __future__ import annotations

import numpy as np

from preprocess.synthetic.arrays import cum, mix64, rows_pick
from preprocess.synthetic.config import SynthConfig
from preprocess.synthetic.tables import DESCRIPTIONS, FIRST_NAMES, GENERIC, MONTHS, PUNCT, SYLLABLES, THEME_WORDS
from preprocess.synthetic.tastes import tastes

_GENERIC_TITLES = tuple(p.rsplit(":", 1)[0] for p in GENERIC.split("|"))
_GENERIC_CW = cum(np.array([float(p.rsplit(":", 1)[1]) for p in GENERIC.split("|")]))


def sample_titles(rng: np.random.Generator, t1: np.ndarray, t2: np.ndarray,
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
    rare_code = mix64(rare_index.astype(np.int64), 0xA11CE)
    r_vocab, r_generic = rng.random(n), rng.random(n)
    personal = cfg.personal_head * (rng.random(n) ** (-1 / cfg.personal_alpha) - 1)
    personal = np.minimum(personal, 2.0**52).astype(np.int64)
    case = np.searchsorted([0.55, 0.80, 0.88], rng.random(n), side="right")
    noise = rng.random((n, 6))
    picks = rng.integers(0, 2**31, size=(n, 4))
    desc = rng.random(n) < cfg.p_description
    names, descriptions = [], []
    vocab = rows_pick(_padded(ts.title_cw), src, r_vocab)
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
    h = int(mix64(np.array([k], dtype=np.uint64), 0x5EED)[0])
    form = h % 12
    h >>= 4
    a = FIRST_NAMES[h % len(FIRST_NAMES)]
    h //= len(FIRST_NAMES)
    w1 = THEME_WORDS[h % len(THEME_WORDS)]
    h //= len(THEME_WORDS)
    w2 = THEME_WORDS[h % len(THEME_WORDS)]
    h //= len(THEME_WORDS)
    b = FIRST_NAMES[h % len(FIRST_NAMES)]
    h //= len(FIRST_NAMES)
    month, year = MONTHS[h % 12], 2010 + (h // 12) % 8
    return (a, f"{a}'s playlist", f"for {a}", w1, f"{w1} {w2}", f"{a} & {b}", f"{w1} songs", month,
            f"{month} {year}", f"{w1} {year}", f"{a}'s {w1}", f"{w1} mix")[form]


def _rare_title(h: int) -> str:
    """The title of hash h in a deep pool (nicknames, inside jokes, names and words with a number):
    short like the common ones, but with so many forms (~1e16) that distinct hashes rarely meet,
    so a title repeats only where its pool index does."""
    picks = []
    for size in (len(SYLLABLES),) * 3 + (2, len(FIRST_NAMES), len(THEME_WORDS), len(THEME_WORDS), 99, 6):
        h, r = divmod(h, size)
        picks.append(r)
    s1, s2, s3, long_nick, a, w1, w2, num, form = picks
    nick = SYLLABLES[s1] + SYLLABLES[s2] + (SYLLABLES[s3] if long_nick else "")
    a, w1, w2, num = FIRST_NAMES[a], THEME_WORDS[w1], THEME_WORDS[w2], num + 1
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
        s = s + PUNCT[int(picks[2]) % len(PUNCT)]
        if r[2] < cfg.p_punct / 5:
            wraps = ("#" + s, s.replace(" ", "_"), s.replace(" ", "."), "~" + s + "~", "*" + s, "(" + s + ")")
            s = wraps[int(picks[2] >> 8) % len(wraps)]
    if r[3] < cfg.p_emoji:  # emoji of the playlist's taste
        e = emo[int(picks[3]) % len(emo)] * (1 + int(picks[3] >> 8) % 3)
        s = f"{e} {s}" if r[4] < 0.2 else f"{s} {e}"
    if r[5] < 0.01:
        s = f" {s}  "
    return s


def _description(base: str, emo: tuple[str, ...], pick: int) -> str:
    return DESCRIPTIONS[pick % len(DESCRIPTIONS)].format(base, emo[(pick >> 4) % len(emo)])
