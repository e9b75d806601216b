"""Audio features: Chromaprint fingerprint (libchromaprint through pyacoustid) and an MFCC summary.

The fpcalc binary is not used: on Debian 12 it exits 3 on valid files. Audio is decoded once
(in-process, PyAV), to mono 11025 Hz (Chromaprint's own working rate), and both features are
computed from it piece by piece as it is decoded (`extract_audio`).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 11025
# Chromaprint: 4096-sample frames with 2/3 overlap at 11025 Hz -> one sub-fingerprint per 1365 samples.
FP_ITEM_SECONDS = 1365 / SAMPLE_RATE
MIN_SECONDS = 1.0
SILENCE_RMS = 1e-4
# The soundtrack's first six hours: what it keeps until the end (the mel spectrogram the MFCC
# summary is taken from, 40 MB per hour) stays under 240 MB.
MAX_SECONDS = 6 * 3600.0
N_FFT, HOP = 1024, 512  # the MFCC's STFT
MEL_PIECE = 1 << 18  # samples (24 s) gathered before each STFT of a streamed soundtrack


@dataclass(frozen=True)
class AudioFeatures:
    duration: float
    fingerprint: np.ndarray | None  # uint32 sub-fingerprints, one per FP_ITEM_SECONDS
    mfcc: np.ndarray | None  # (40,) mean and std of 20 MFCCs
    silent: bool


# Decoded frames joined into one resampler call. Each call costs ~50 µs of PyAV overhead, and a
# minute of AAC is 2,600 frames: resampling frame by frame was half of decoding the soundtrack.
# They are joined in libavutil's sample FIFO, never through numpy: PyAV's `AudioFrame.planes`
# counts planes up to a NULL pointer that a planar frame of 8 or more channels lacks (it reports 9
# planes for 7.1), so `to_ndarray` read past the frame and a 7.1 soundtrack killed the process.
RESAMPLE_FRAMES = 64


def pcm_chunks(path: Path, *, max_seconds: float = MAX_SECONDS):
    """Mono 11025 Hz s16 PCM of the first audio stream, in pieces as they are decoded, up to
    `max_seconds` (nothing when there is no audio stream or it is unreadable).

    In-process through PyAV (libswresample, as the `ffmpeg -ac 1 -ar 11025` child it replaces: on
    the benchmark's files the same length, samples within 3 steps of 32,768, identical Chromaprint
    fingerprints). The child cost 0.13 CPU-s per video-minute, PyAV 0.10 (docs/benchmarks.md).
    Decoded frames go to the resampler `RESAMPLE_FRAMES` at a time, joined in a sample FIFO: a
    streaming resampler gives the same samples however its input is cut (tested against frame by
    frame). Any layout works, 7.1 and wider included: no frame of the source's is read by numpy.
    A corrupt packet is skipped; a container broken part-way keeps what decoded before the break."""
    import av

    limit = int(max_seconds * SAMPLE_RATE)
    got = 0
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return
    with container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        stream.thread_count = 1
        resampler, kind = None, None  # one resampler per run of frames of one format, layout and rate
        fifo, pending = None, 0  # that run's decoded frames not yet resampled, joined, and how many
        ready: list[np.ndarray] = []  # resampled, not yet handed out

        def resample(frame) -> None:
            ready.extend(_samples(out) for out in resampler.resample(frame))

        def flush() -> None:
            nonlocal pending
            joined = fifo.read() if pending else None  # None: the frames held no samples
            if joined is not None:
                resample(joined)
            pending = 0

        def handed_out():
            nonlocal got
            for piece in ready:
                piece = piece[: limit - got]
                if piece.size:
                    got += piece.size
                    yield piece
            ready.clear()

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
                        fifo, kind = av.AudioFifo(), _kind(frame)
                    frame.pts = (
                        None  # the FIFO would insist on gapless timestamps; the samples are what count
                    )
                    fifo.write(frame)
                    pending += 1
                if pending >= RESAMPLE_FRAMES:
                    flush()
                    yield from handed_out()
                    if got >= limit:
                        return
            else:
                flush()
                if resampler is not None:
                    resample(None)
        except av.error.FFmpegError:
            flush()  # the container itself is broken from here on: keep what decoded
        yield from handed_out()


def decode_audio(path: Path, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """`pcm_chunks` in one array (empty when there is no sound)."""
    pieces = list(pcm_chunks(path, max_seconds=max_seconds))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def _kind(frame) -> tuple:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _samples(frame) -> np.ndarray:
    """A mono s16 frame's samples, copied out of its buffer (which may be padded past them).
    `AudioFrame.to_ndarray` stacks the planes with numpy on every call: a third of this
    function's CPU time for a minute of AAC's 2,600 frames, for the same samples."""
    return np.frombuffer(frame.planes[0], dtype=np.int16, count=frame.samples).copy()


class _Fingerprint:
    """Chromaprint over a soundtrack fed in pieces (the same fingerprint as one feed: tested)."""

    def __init__(self):
        import chromaprint

        self.fp = chromaprint.Fingerprinter()
        self.fp.start(SAMPLE_RATE, 1)
        self.samples = 0

    def feed(self, pcm: np.ndarray) -> None:
        self.fp.feed(pcm.tobytes())
        self.samples += pcm.size

    def finish(self) -> np.ndarray | None:
        import chromaprint

        if self.samples < SAMPLE_RATE * MIN_SECONDS:
            return None
        raw, _algorithm = chromaprint.decode_fingerprint(self.fp.finish())
        if not raw:
            return None
        return np.asarray(raw, dtype=np.int64).astype(np.uint32)


class _MfccSummary:
    """Mean and std of 20 MFCCs of a soundtrack fed in pieces: librosa's `mfcc(y=...)` over the
    whole signal (n_fft 1024, hop 512, centred frames), up to float rounding (tested).

    The mel spectrogram is made a piece at a time, frames straddling the pieces included, and kept
    (128 floats per 512 samples); the decibel scale then needs all of it, being clipped 80 dB
    below the loudest frame. Made whole, the spectrogram of an hour took ~800 MB at its peak."""

    def __init__(self):
        self.pending = np.zeros(N_FFT // 2, dtype=np.float32)  # librosa centres frames on zeros
        self.mel: list[np.ndarray] = []
        self.samples = 0

    def feed(self, pcm: np.ndarray) -> None:
        self.pending = np.concatenate([self.pending, pcm.astype(np.float32) / 32768.0])
        self.samples += pcm.size
        if self.pending.size >= MEL_PIECE:
            self._frames()

    def _frames(self) -> None:
        """Every whole frame of `pending` into the spectrogram; what the next frame needs stays."""
        import librosa

        if self.pending.size < N_FFT:
            return
        n = 1 + (self.pending.size - N_FFT) // HOP
        y = self.pending[: (n - 1) * HOP + N_FFT]
        self.mel.append(
            librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, center=False)
        )
        self.pending = self.pending[n * HOP :]

    def finish(self) -> np.ndarray | None:
        import librosa

        if self.samples < SAMPLE_RATE * 0.25:
            return None
        self.pending = np.concatenate([self.pending, np.zeros(N_FFT // 2, dtype=np.float32)])
        self._frames()
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(np.concatenate(self.mel, axis=1)), n_mfcc=20)
        return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def extract_audio(path: Path) -> AudioFeatures | None:
    """Audio features of a file, or None when it has no decodable audio track.

    The soundtrack is decoded and consumed a piece at a time: a long one is never held whole (an
    hour's PCM and spectrogram at once took ~800 MB)."""
    fingerprint, summary = _Fingerprint(), _MfccSummary()
    samples, energy = 0, 0.0
    for pcm in pcm_chunks(path):
        y = pcm.astype(np.float64) / 32768.0
        samples, energy = samples + pcm.size, energy + float(np.dot(y, y))
        fingerprint.feed(pcm)
        summary.feed(pcm)
    if samples == 0:
        return None
    duration = samples / SAMPLE_RATE
    if np.sqrt(energy / samples) < SILENCE_RMS:
        return AudioFeatures(duration=duration, fingerprint=None, mfcc=None, silent=True)
    return AudioFeatures(
        duration=duration, fingerprint=fingerprint.finish(), mfcc=summary.finish(), silent=False
    )


def warm_up() -> None:
    """librosa's first MFCC compiles numba kernels (~20 s); do it once per worker, not per video."""
    summary = _MfccSummary()
    summary.feed((np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 1000).astype(np.int16))
    summary.finish()
