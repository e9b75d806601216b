"""Audio features: Chromaprint fingerprint (libchromaprint through pyacoustid) and an MFCC summary.

The fpcalc binary is not used: on Debian 12 it exits 3 on valid files. Audio is decoded once
(in-process, PyAV), to mono 11025 Hz (Chromaprint's own working rate), and both features are computed from it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 11025
# Chromaprint: 4096-sample frames with 2/3 overlap at 11025 Hz -> one sub-fingerprint per 1365 samples.
FP_ITEM_SECONDS = 1365 / SAMPLE_RATE
MIN_SECONDS = 1.0
SILENCE_RMS = 1e-4


@dataclass(frozen=True)
class AudioFeatures:
    duration: float
    fingerprint: np.ndarray | None  # uint32 sub-fingerprints, one per FP_ITEM_SECONDS
    mfcc: np.ndarray | None  # (40,) mean and std of 20 MFCCs
    silent: bool


# Decoded frames joined into one resampler call. Each call costs ~50 µs of PyAV overhead, and a
# minute of AAC is 2,600 frames: resampling frame by frame was half of decoding the soundtrack.
RESAMPLE_FRAMES = 64


def decode_audio(path: Path, *, max_seconds: float = 3600.0) -> np.ndarray:
    """Mono 11025 Hz s16 PCM of the first audio stream (empty when there is none or it is unreadable).

    In-process through PyAV (libswresample, as the `ffmpeg -ac 1 -ar 11025` child it replaces: on
    the benchmark's files the same length, samples within 3 steps of 32,768, identical Chromaprint
    fingerprints). The child cost 0.13 CPU-s per video-minute, PyAV 0.10 (docs/benchmarks.md).
    Decoded frames go to the resampler `RESAMPLE_FRAMES` at a time, joined: a streaming resampler
    gives the same samples however its input is cut (tested against frame by frame).
    A corrupt packet is skipped; a container broken part-way keeps what decoded before the break."""
    import av

    chunks: list[np.ndarray] = []
    limit = int(max_seconds * SAMPLE_RATE)
    got = 0
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return np.zeros(0, dtype=np.int16)
    with container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.int16)
        stream = container.streams.audio[0]
        stream.thread_count = 1
        resampler, kind = None, None  # one resampler per run of frames of one format, layout and rate
        pending: list = []  # decoded frames of that run, not yet resampled

        def resample(frame) -> None:
            nonlocal got
            for out in resampler.resample(frame):
                chunks.append(_samples(out))
                got += chunks[-1].size

        def flush() -> None:
            if pending:
                resample(_joined(pending))
                pending.clear()

        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()  # the last (empty) packet flushes the decoder
                except av.error.InvalidDataError:
                    continue  # a corrupt packet: skip it, as the ffmpeg program did
                for frame in frames:
                    if _kind(frame) != kind:
                        # a broadcast recording switching between stereo and 5.1, or streams
                        # joined: the ffmpeg program set its resampler up again, PyAV's refuses
                        flush()
                        if resampler is not None:
                            resample(None)  # what the old one holds back
                        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                        kind = _kind(frame)
                    pending.append(frame)
                if len(pending) >= RESAMPLE_FRAMES:
                    flush()
                    if got >= limit:
                        break
            else:
                flush()
                if resampler is not None:
                    resample(None)
        except av.error.FFmpegError:
            flush()  # the container itself is broken from here on: keep what decoded
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks)[:limit].astype(np.int16, copy=False)


def _kind(frame) -> tuple:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _joined(frames: list):
    """One audio frame holding `frames`' samples in order (all of one format, layout and rate)."""
    import av

    if len(frames) == 1:
        return frames[0]
    first = frames[0]
    # planar formats: (channels, samples); packed: (1, samples × channels) - joined along samples
    data = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)
    joined = av.AudioFrame.from_ndarray(data, format=first.format.name, layout=first.layout.name)
    joined.sample_rate = first.sample_rate
    return joined


def _samples(frame) -> np.ndarray:
    """A mono s16 frame's samples, copied out of its buffer (which may be padded past them).
    `AudioFrame.to_ndarray` stacks the planes with numpy on every call: a third of this
    function's CPU time for a minute of AAC's 2,600 frames, for the same samples."""
    return np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples).copy()


def chromaprint_fingerprint(pcm: np.ndarray) -> np.ndarray | None:
    import chromaprint

    if pcm.size < SAMPLE_RATE * MIN_SECONDS:
        return None
    fp = chromaprint.Fingerprinter()
    fp.start(SAMPLE_RATE, 1)
    fp.feed(pcm.tobytes())
    raw, _algorithm = chromaprint.decode_fingerprint(fp.finish())
    if not raw:
        return None
    return np.asarray(raw, dtype=np.int64).astype(np.uint32)


def mfcc_summary(pcm: np.ndarray) -> np.ndarray | None:
    import librosa

    if pcm.size < SAMPLE_RATE * 0.25:
        return None
    y = pcm.astype(np.float32) / 32768.0
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=20, n_fft=1024, hop_length=512)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def extract_audio(path: Path) -> AudioFeatures | None:
    """Audio features of a file, or None when it has no decodable audio track."""
    pcm = decode_audio(path)
    if pcm.size == 0:
        return None
    duration = pcm.size / SAMPLE_RATE
    rms = float(np.sqrt(np.mean((pcm.astype(np.float32) / 32768.0) ** 2)))
    silent = rms < SILENCE_RMS
    if silent:
        return AudioFeatures(duration=duration, fingerprint=None, mfcc=None, silent=True)
    return AudioFeatures(
        duration=duration, fingerprint=chromaprint_fingerprint(pcm), mfcc=mfcc_summary(pcm), silent=False
    )


def warm_up() -> None:
    """librosa's first MFCC compiles numba kernels (~20 s); do it once per worker, not per video."""
    mfcc_summary((np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 1000).astype(np.int16))
