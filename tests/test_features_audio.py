import subprocess
import sys
from pathlib import Path

import numpy as np

from dedup.features.audio import FP_ITEM_SECONDS, SAMPLE_RATE, decode_audio, extract_audio

from .media import make_clip, transcode


def test_it_fingerprints_and_summarises_a_soundtrack(tmp_path):
    path = make_clip(tmp_path / "noisy.mp4", duration=6, noise_seed=1)
    audio = extract_audio(path)
    assert audio is not None and not audio.silent
    assert audio.fingerprint is not None and audio.fingerprint.dtype == np.uint32
    # Chromaprint needs ~2.5 s of context before its first sub-fingerprint
    assert 3.0 <= len(audio.fingerprint) * FP_ITEM_SECONDS <= 6.0
    assert audio.mfcc.shape == (40,)


def test_a_video_without_audio_has_no_audio_features(other_clip):
    assert extract_audio(other_clip) is None


def test_a_reencoded_soundtrack_keeps_its_fingerprint(tmp_path):
    from dedup.matching.score import fingerprint_similarity

    a = make_clip(tmp_path / "a.mp4", duration=8, noise_seed=5)
    b = transcode(a, tmp_path / "b.mp4", crf=35)
    c = make_clip(tmp_path / "c.mp4", duration=8, noise_seed=6)
    fa, fb, fc = (extract_audio(p).fingerprint for p in (a, b, c))
    same, offset, _ = fingerprint_similarity(fa, fb)
    other, _, _ = fingerprint_similarity(fa, fc)
    assert same > 0.8 and abs(offset) < 0.3
    assert other < 0.5


def test_in_process_decoding_gives_the_samples_ffmpeg_gives(tmp_path):
    """PyAV replaced an `ffmpeg -ac 1 -ar 11025` child; fingerprints stored before must still compare."""
    path = make_clip(tmp_path / "stereo.mp4", duration=5, noise_seed=3)
    ours = decode_audio(path)
    theirs = _ffmpeg_mono(path)
    assert ours.dtype == np.int16 and ours.size == theirs.size > 4 * SAMPLE_RATE
    assert np.abs(ours.astype(np.int32) - theirs.astype(np.int32)).max() <= 3


def _ffmpeg_mono(path) -> np.ndarray:
    """The soundtrack as the `ffmpeg -ac 1 -ar 11025` program decodes it."""
    cli = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE)]
        + ["-f", "s16le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(cli, dtype=np.int16)


def test_decoding_stops_at_the_limit_and_tolerates_files_without_sound(tmp_path, other_clip):
    path = make_clip(tmp_path / "long.mp4", duration=5, tone=330)
    assert decode_audio(path, max_seconds=2.0).size == 2 * SAMPLE_RATE
    assert decode_audio(other_clip).size == 0
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    assert decode_audio(text).size == 0


def test_a_damaged_soundtrack_is_decoded_past_the_damage(tmp_path):
    """Broken uploads are common: a corrupt packet is skipped, as the ffmpeg program skipped it."""
    path = make_clip(tmp_path / "damaged.mp4", duration=8, tone=440)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for start in rng.integers(len(data) // 4, 3 * len(data) // 4, size=30):
        data[start : start + 40] = rng.integers(0, 256, size=40, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert decode_audio(path).size >= 7.5 * SAMPLE_RATE


def _frame_by_frame(path) -> np.ndarray:
    """Each decoded frame through the resampler on its own, as decode_audio once did."""
    import av

    out = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(container.streams.audio[0]):
            out += [o.to_ndarray()[0] for o in resampler.resample(frame)]
        out += [o.to_ndarray()[0] for o in resampler.resample(None)]
    return np.concatenate(out)


def _soundtrack(path, codec: str, channels: int, rate: int, extra: tuple = ()) -> None:
    melody = "aevalsrc=0.4*sin(2*PI*t*(220+110*mod(floor(t*3)\\,5)))+0.05*random(0):s=48000"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            melody,
            "-t",
            "7",
            "-ac",
            str(channels),
            "-ar",
            str(rate),
        ]
        + ["-c:a", codec, *extra, str(path)],
        check=True,
    )


def test_joined_resampling_gives_the_samples_of_resampling_frame_by_frame(tmp_path):
    """The decoder's frames reach the resampler many at a time; planar and packed sample formats,
    mono to 5.1, 8 to 48 kHz, and a stream that changes rate and layout mid-way must all give
    exactly the samples of one resampler call per frame."""
    cases = [
        ("aac.mp4", "aac", 2, 44100),  # float planar
        ("mp3.mp3", "libmp3lame", 1, 22050),
        ("pcm.wav", "pcm_s16le", 1, 8000),  # packed s16
        ("flac.mkv", "flac", 6, 48000),  # packed, 5.1
        ("opus.ogg", "libopus", 2, 48000),  # packed float
        ("ac3.mkv", "ac3", 6, 48000),
    ]
    for name, codec, channels, rate in cases:
        path = tmp_path / name
        _soundtrack(path, codec, channels, rate)
        ours, theirs = decode_audio(path), _frame_by_frame(path)
        assert ours.size > 6 * SAMPLE_RATE, name
        assert np.array_equal(ours, theirs), name
    # an MPEG-TS joined from a stereo 44.1 kHz and a mono 22.05 kHz soundtrack (PyAV's resampler
    # refuses a frame unlike its first: this raised ValueError and failed the video)
    parts = []
    for i, (channels, rate) in enumerate([(2, 44100), (1, 22050)]):
        parts.append(tmp_path / f"part{i}.ts")
        _soundtrack(parts[-1], "mp2", channels, rate, ("-f", "mpegts"))
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    ours, first, second = decode_audio(joined), decode_audio(parts[0]), decode_audio(parts[1])
    assert abs(ours.size - first.size - second.size) < 0.05 * SAMPLE_RATE  # a frame may go at the seam
    head = first.size - SAMPLE_RATE // 10
    assert np.array_equal(ours[:head], first[:head])
    # the second part's decoder carries the first's state in: rounding steps apart
    tail = 5 * SAMPLE_RATE
    assert np.abs(ours[-tail:].astype(np.int32) - second[-tail:].astype(np.int32)).max() <= 3


def _gliding_tone(seconds: float) -> np.ndarray:
    """Noise under a gliding tone, s16 at the working rate: every frame of the spectrogram differs."""
    rng = np.random.default_rng(4)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    y = 0.3 * np.sin(2 * np.pi * (200 + 40 * t) * t) + 0.05 * rng.standard_normal(t.size)
    return (y * 32767).astype(np.int16)


def test_the_streamed_mfcc_summary_is_librosas_over_the_whole_signal():
    """A soundtrack is summarised a piece at a time (pieces of any size, frames straddling them)
    so that an hour of it is never held whole: the result must be librosa's own, whole."""
    import librosa

    from dedup.features.audio import MEL_PIECE, _MfccSummary

    pcm = _gliding_tone(2.5 * MEL_PIECE / SAMPLE_RATE + 0.37)  # three STFT pieces, a ragged end
    y = pcm.astype(np.float32) / 32768.0
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=20, n_fft=1024, hop_length=512)
    whole = np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)])
    streamed = _MfccSummary()
    for start in range(0, pcm.size, 4999):
        streamed.feed(pcm[start : start + 4999])
    summary = streamed.finish()
    assert summary.shape == (40,)
    assert np.abs(summary - whole).max() < 1e-4 * np.abs(whole).max()


def test_chromaprint_fed_in_pieces_gives_the_fingerprint_of_one_feed():
    import chromaprint

    from dedup.features.audio import _Fingerprint

    pcm = _gliding_tone(20.0)
    pieces = _Fingerprint()
    for start in range(0, pcm.size, 16411):
        pieces.feed(pcm[start : start + 16411])
    streamed = pieces.finish()
    assert streamed is not None and len(streamed) * FP_ITEM_SECONDS > 15
    # the whole soundtrack in one feed, straight through pyacoustid
    whole = chromaprint.Fingerprinter()
    whole.start(SAMPLE_RATE, 1)
    whole.feed(pcm.tobytes())
    raw, _ = chromaprint.decode_fingerprint(whole.finish())
    assert np.array_equal(streamed, np.asarray(raw, dtype=np.int64).astype(np.uint32))


def _layout_soundtrack(path, codec: str, layout: str, rate: int = 48000, extra: tuple = ()) -> None:
    melody = "aevalsrc=0.4*sin(2*PI*t*(220+110*mod(floor(t*3)\\,5)))+0.05*random(0):s=48000"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", melody, "-t", "3"]
        + ["-af", f"aformat=channel_layouts={layout}", "-ar", str(rate), "-c:a", codec, *extra, str(path)],
        check=True,
    )


def test_soundtracks_of_any_layout_and_rate_are_downmixed_without_crashing_the_process(tmp_path):
    """A 7.1 planar frame made PyAV's `to_ndarray` read a ninth plane that does not exist: the
    process died (SIGSEGV) and took its worker with it. Decoded in a child, so a crash fails this
    test instead of ending the test run; each downmix must equal resampling frame by frame and
    stay within rounding of the ffmpeg program's."""
    cases = {
        "noise71.m4a": None,  # the reported file: anoisesrc, 7.1, AAC
        "aac71.m4a": ("aac", "7.1", 48000),
        "vorbis71.ogg": ("libvorbis", "7.1", 48000),
        "flac71.flac": ("flac", "7.1", 48000),  # packed s32
        "aac51.m4a": ("aac", "5.1", 48000),
        "aac30.m4a": ("aac", "3.0", 48000),
        "aac21.m4a": ("aac", "2.1", 48000),
        "quad.ac3": ("ac3", "quad", 48000),
        "opus16.mka": ("libopus", "hexadecagonal", 48000, ("-mapping_family", "255")),  # 16 planes
        "aac8k.m4a": ("aac", "stereo", 8000),
        "aac96k.m4a": ("aac", "stereo", 96000),
        "mono96k.m4a": ("aac", "mono", 96000),
    }
    for name, case in cases.items():
        if case is None:
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=3"]
                + ["-af", "aformat=channel_layouts=7.1", "-c:a", "aac", str(tmp_path / name)],
                check=True,
            )
        else:
            _layout_soundtrack(tmp_path / name, *case)
    child = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from dedup.features.audio import decode_audio\n"
        "for name in sys.argv[2:]:\n"
        "    np.save(Path(sys.argv[1]) / (name + '.npy'), decode_audio(Path(sys.argv[1]) / name))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path), *cases],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])  # -11: the segfault
    for name in cases:
        ours = np.load(tmp_path / f"{name}.npy")
        assert ours.dtype == np.int16 and abs(ours.size - 3 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE, name
        assert np.abs(ours.astype(np.int32)).max() > 1000, name  # sound, not silence or garbage
        assert np.array_equal(ours, _frame_by_frame(tmp_path / name)), name
        if name != "opus16.mka":  # the program mixes an unnamed 16-channel layout its own way
            cli = _ffmpeg_mono(tmp_path / name)
            assert ours.size == cli.size, name
            assert np.abs(ours.astype(np.int32) - cli.astype(np.int32)).max() <= 3, name
