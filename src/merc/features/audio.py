"""Audio extractors: wav/flac files → acoustic features.

- ``librosa`` (default) — per-frame low-level descriptors (MFCC and deltas, chroma, spectral
  centroid/bandwidth/roll-off/flatness/contrast, RMS energy, zero-crossing rate, pitch) and,
  at utterance level, their functionals (mean, std, 10th and 90th percentile) plus duration:
  a fixed-size vector per file. ``level="frame"`` returns the ``[T, 66]`` descriptor matrix
  (10 ms hop), DRKF's frame-level input.
- ``opensmile`` (optional extra, ``pip install opensmile``) — the openSMILE feature sets
  (eGeMAPSv02 88-d, ComParE_2016 6373-d, GeMAPS, emobase) or any openSMILE ``.conf`` file
  (e.g. the IS10 paralinguistic set); functionals or low-level descriptors. openSMILE is free
  for research and education only; commercial use needs a licence from audEERING.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from merc.errors import ConfigError, DataError, MercError
from merc.features.base import Extractor
from merc.features.text import check_level
from merc.registry import EXTRACTORS

FUNCTIONALS = ("mean", "std", "p10", "p90")
_PITCH_REF_HZ = 55.0


def _import_librosa() -> Any:
    try:
        import librosa
    except ImportError as exc:
        raise MercError("the librosa audio extractor needs librosa and soundfile; pip install 'merc[audio]'") from exc
    return librosa


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of ``path`` resampled to ``sample_rate``; errors name the file."""
    librosa = _import_librosa()
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "audio file not found", field="audio", fix="check the path in the audio column")
    try:
        with warnings.catch_warnings():  # librosa's audioread fallback warns before failing
            warnings.simplefilter("ignore")
            y, _ = librosa.load(str(p), sr=sample_rate, mono=True)
    except Exception as exc:  # noqa: BLE001 - soundfile/audioread raise many types
        raise DataError(p, f"cannot decode audio ({type(exc).__name__})", field="audio",
                        fix="use wav or flac (PCM) files") from None
    if y.size == 0:
        raise DataError(p, "audio file has no samples", field="audio", fix="remove or replace the empty file")
    return y.astype(np.float32)


class LibrosaExtractor(Extractor):
    """Hand-crafted acoustic descriptors with librosa.

    Args:
        level: ``utterance`` (functionals, ``[4 * 66 + 1]``) or ``frame`` (``[T, 66]``).
        sample_rate: audio is resampled to this rate.
        n_mfcc: number of MFCCs (the descriptor count is ``2 * n_mfcc + 26``).
        hop_ms: frame hop in milliseconds; the window is 2.5 × hop.
        fmin, fmax: pitch search range in Hz.
    """

    modality = "a"
    name = "librosa"

    def __init__(self, level: str = "utterance", sample_rate: int = 16000, n_mfcc: int = 20, hop_ms: float = 10.0,
                 fmin: float = 60.0, fmax: float = 500.0) -> None:
        self.level = check_level(level)
        if sample_rate < 4000 or n_mfcc < 1 or hop_ms <= 0 or not 0 < fmin < fmax:
            raise ConfigError("librosa extractor: need sample_rate ≥ 4000, n_mfcc ≥ 1, hop_ms > 0, 0 < fmin < fmax")
        self.sample_rate = int(sample_rate)
        self.n_mfcc = int(n_mfcc)
        self.hop = int(round(sample_rate * hop_ms / 1000.0))
        self.n_fft = int(2 ** np.ceil(np.log2(2.5 * self.hop)))
        self.fmin, self.fmax = float(fmin), float(fmax)

    @property
    def num_descriptors(self) -> int:
        return 2 * self.n_mfcc + 12 + 4 + 7 + 2 + 1

    @property
    def dim(self) -> int:
        return self.num_descriptors if self.level == "frame" else len(FUNCTIONALS) * self.num_descriptors + 1

    def settings(self) -> dict[str, Any]:
        librosa = _import_librosa()
        return {"level": self.level, "sample_rate": self.sample_rate, "n_mfcc": self.n_mfcc, "hop": self.hop,
                "n_fft": self.n_fft, "fmin": self.fmin, "fmax": self.fmax, "functionals": list(FUNCTIONALS),
                "librosa": librosa.__version__}

    def descriptors(self, y: np.ndarray) -> np.ndarray:
        """Per-frame descriptors ``[T, num_descriptors]`` of one mono signal."""
        librosa = _import_librosa()
        if y.size < self.n_fft:
            y = np.pad(y, (0, self.n_fft - y.size))
        spec = np.abs(librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop))  # (F, T)
        power = spec ** 2
        sr = self.sample_rate
        mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=40)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=self.n_mfcc)  # (n_mfcc, T)
        delta = librosa.feature.delta(mfcc, width=3, mode="nearest")
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=self.n_fft, tuning=0.0)  # (12, T)
        spectral = np.vstack([
            librosa.feature.spectral_centroid(S=spec, sr=sr) / 1000.0,
            librosa.feature.spectral_bandwidth(S=spec, sr=sr) / 1000.0,
            librosa.feature.spectral_rolloff(S=spec, sr=sr) / 1000.0,
            librosa.feature.spectral_flatness(S=spec),
        ])
        contrast = librosa.feature.spectral_contrast(S=spec, sr=sr, n_bands=6, fmin=100.0)  # (7, T)
        rms = librosa.feature.rms(S=spec, frame_length=self.n_fft)
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=self.n_fft, hop_length=self.hop)
        pitch_window = max(self.n_fft, 2 * int(sr / self.fmin) + 2)
        f0 = librosa.yin(np.pad(y, (0, max(0, pitch_window - y.size))), fmin=self.fmin, fmax=self.fmax, sr=sr,
                         frame_length=pitch_window, hop_length=self.hop)
        semitones = 12.0 * np.log2(np.maximum(f0, 1.0) / _PITCH_REF_HZ)[None, :]
        T = min(x.shape[1] for x in (mfcc, chroma, spectral, contrast, rms, zcr, semitones))
        stacked = np.vstack([a[:, :T] for a in (mfcc, delta, chroma, spectral, contrast,
                                                np.log(rms + 1e-6), zcr, semitones)])
        return stacked.T.astype(np.float32)  # (T, D)

    def functionals(self, frames: np.ndarray, num_samples: int) -> np.ndarray:
        """``[4 * D + 1]``: mean, std, p10, p90 of each descriptor and the duration in seconds."""
        p10, p90 = np.percentile(frames, [10, 90], axis=0)
        duration = np.array([num_samples / self.sample_rate], dtype=np.float32)
        return np.concatenate([frames.mean(0), frames.std(0), p10, p90, duration]).astype(np.float32)

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        out = []
        for path in items:  # one decode per file is inherent; the per-frame maths is vectorised
            y = read_audio(path, self.sample_rate)
            frames = self.descriptors(y)
            out.append(frames if self.level == "frame" else self.functionals(frames, y.size))
        return out


@EXTRACTORS.register("librosa")
def librosa_features(level: str = "utterance", sample_rate: int = 16000, n_mfcc: int = 20, hop_ms: float = 10.0,
                     fmin: float = 60.0, fmax: float = 500.0) -> LibrosaExtractor:
    """Acoustic functionals with librosa (MFCC, chroma, spectral, energy, ZCR, pitch; 265-d)."""
    return LibrosaExtractor(level, sample_rate, n_mfcc, hop_ms, fmin, fmax)


class OpenSmileExtractor(Extractor):
    """openSMILE feature sets through the ``opensmile`` Python package (optional extra).

    Args:
        feature_set: an ``opensmile.FeatureSet`` name (``eGeMAPSv02``, ``ComParE_2016``,
            ``GeMAPSv01b``, ``emobase``) or the path of an openSMILE ``.conf`` file (IS10 etc.).
        level: ``utterance`` (functionals) or ``frame`` (low-level descriptors).
        sample_rate: audio is resampled to this rate before processing.
    """

    modality = "a"
    name = "opensmile"

    def __init__(self, feature_set: str = "eGeMAPSv02", level: str = "utterance", sample_rate: int = 16000) -> None:
        self.feature_set = feature_set
        self.level = check_level(level)
        self.sample_rate = int(sample_rate)
        self._smile: Any = None

    def _module(self) -> Any:
        try:
            import opensmile
        except ImportError as exc:
            raise MercError("the opensmile extractor needs the opensmile package (research/education licence); "
                            "pip install 'merc[opensmile]' or use --audio librosa") from exc
        return opensmile

    def load(self) -> Any:
        if self._smile is None:
            opensmile = self._module()
            if Path(self.feature_set).suffix == ".conf":
                if not Path(self.feature_set).is_file():
                    raise ConfigError(f"{self.feature_set}: openSMILE config file not found")
                feature_set: Any = self.feature_set
            elif hasattr(opensmile.FeatureSet, self.feature_set):
                feature_set = getattr(opensmile.FeatureSet, self.feature_set)
            else:
                valid = ", ".join(m.name for m in opensmile.FeatureSet)
                raise ConfigError(f"unknown openSMILE feature_set '{self.feature_set}'; valid: {valid} or a .conf path")
            level = (opensmile.FeatureLevel.Functionals if self.level == "utterance"
                     else opensmile.FeatureLevel.LowLevelDescriptors)
            self._smile = opensmile.Smile(feature_set=feature_set, feature_level=level)
        return self._smile

    def settings(self) -> dict[str, Any]:
        opensmile = self._module()
        conf = Path(self.feature_set)
        ident = conf.read_text(errors="replace") if conf.suffix == ".conf" and conf.is_file() else self.feature_set
        return {"feature_set": self.feature_set, "config_text_hash": hash_text(ident), "level": self.level,
                "sample_rate": self.sample_rate, "opensmile": opensmile.__version__}

    @property
    def dim(self) -> int:
        return len(self.load().feature_names)

    def extract(self, items: Sequence[Any]) -> list[np.ndarray]:
        smile = self.load()
        out = []
        for path in items:
            y = read_audio(path, self.sample_rate)
            values = np.asarray(smile.process_signal(y, self.sample_rate), dtype=np.float32)  # (T, D)
            out.append(values if self.level == "frame" else values.reshape(-1))
        return out


def hash_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@EXTRACTORS.register("opensmile")
def opensmile_features(feature_set: str = "eGeMAPSv02", level: str = "utterance",
                       sample_rate: int = 16000) -> OpenSmileExtractor:
    """openSMILE eGeMAPS / ComParE / IS10-style sets (optional extra; research licence)."""
    return OpenSmileExtractor(feature_set, level, sample_rate)
